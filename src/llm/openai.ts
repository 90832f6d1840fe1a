// Optional OpenAI-compatible provider (OPENAI_BASE_URL: vLLM, llama.cpp, Ollama, LiteLLM…) on /v1/chat/completions
// over undici's request() on one keep-alive Pool per origin (fetch's Request/Response/AbortSignal machinery cost
// about 18% of an uncached call), with json_schema structured output, the same retry policy and timeout as Gemini,
// and SSE streaming with usage (stream_options.include_usage). Timeouts are undici's own headers and body timers
// (cleared when a call completes); the caller's signal aborts the upstream request, and so does a stream whose
// consumer stops reading.
import { Type, type Static } from 'typebox'
import { Compile } from 'typebox/compile'
import { Pool, type Dispatcher } from 'undici'
import { CancelledError, LlmTimeoutError, LlmUnavailableError, withDetails } from '../errors.js'
import { parseModelJson } from './json.js'
import { backoffDelay, parseRetryAfter, sleep, type RetryPolicy } from './retry.js'
import { estimateTokens, tokensForChars } from './tokens.js'
import type { GenerateRequest, LlmProvider, StreamChunk, Usage } from './types.js'

export interface OpenAiOptions {
  baseUrl: string
  apiKey?: string
  /** Bounds the connect, the wait for the answer's headers, and each wait between body chunks. */
  timeoutMs: number
  retry: RetryPolicy
  onEvent?(event: 'retry' | 'fallback', details: Record<string, unknown>): void
}

// The parts of OpenAI's answers read here; other fields are ignored. `null` appears where a field is empty
// (a refusal's content, the usage of every stream chunk but the last).
const OpenAiUsageSchema = Type.Object({
  prompt_tokens: Type.Optional(Type.Number()),
  completion_tokens: Type.Optional(Type.Number())
})
type OpenAiUsage = Static<typeof OpenAiUsageSchema>
const MaybeContent = Type.Optional(Type.Union([Type.String(), Type.Null()]))
const MaybeUsage = Type.Optional(Type.Union([OpenAiUsageSchema, Type.Null()]))
const Completion = Compile(Type.Object({
  choices: Type.Optional(Type.Array(Type.Object({ message: Type.Optional(Type.Object({ content: MaybeContent })) }))),
  usage: MaybeUsage
}))
const Chunk = Compile(Type.Object({
  choices: Type.Optional(Type.Array(Type.Object({ delta: Type.Optional(Type.Object({ content: MaybeContent })) }))),
  usage: MaybeUsage
}))

const RETRYABLE = new Set([408, 429, 500, 502, 503, 504])
/** undici's timeouts: the connect, the answer's headers, a pause between body chunks. */
const TIMEOUTS = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT'])
const isTimeout = (error: unknown) => TIMEOUTS.has((error as { code?: string } | null)?.code ?? '')

/** One keep-alive pool per origin and connect timeout, shared by every provider (and app) in the process. */
const pools = new Map<string, Pool>()
function poolFor (origin: string, connectTimeoutMs: number): Pool {
  const key = `${origin} ${connectTimeoutMs}`
  let pool = pools.get(key)
  if (!pool) {
    pool = new Pool(origin, { connectTimeout: connectTimeoutMs })
    pools.set(key, pool)
  }
  return pool
}

/**
 * The response_format member per schema object, serialised once: a method's schema is the same on every
 * call, and stringifying it was half the CPU of building a request.
 */
const formats = new WeakMap<object, string>()
function responseFormat (schema: object): string {
  let format = formats.get(schema)
  if (format === undefined) {
    format = JSON.stringify({ type: 'json_schema', json_schema: { name: 'output', schema } })
    formats.set(schema, format)
  }
  return format
}

/** The reported usage, or an estimate from the prompt and the answer's length in characters. */
function toUsage (usage: OpenAiUsage | undefined, request: GenerateRequest, outputChars: number): Usage {
  if (!usage) {
    return {
      inputTokens: estimateTokens(request.system + request.prompt),
      outputTokens: tokensForChars(outputChars),
      estimated: true
    }
  }
  return { inputTokens: usage.prompt_tokens ?? 0, outputTokens: usage.completion_tokens ?? 0 }
}

const reason = (error: unknown) => (error instanceof Error ? error.message : String(error))

export function createOpenAiProvider (options: OpenAiOptions): LlmProvider {
  const base = options.baseUrl.replace(/\/+$/, '')
  const url = new URL(base.endsWith('/v1') ? `${base}/chat/completions` : `${base}/v1/chat/completions`)
  const path = url.pathname + url.search
  const pool = poolFor(url.origin, options.timeoutMs)
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    ...(options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {})
  }

  /** POSTs with retries; resolves with a 2xx answer whose body is still unread. */
  async function post (request: GenerateRequest, stream: boolean): Promise<Dispatcher.ResponseData> {
    const fields = JSON.stringify({
      model: request.model,
      messages: [
        { role: 'system', content: request.system },
        { role: 'user', content: request.prompt }
      ],
      temperature: request.temperature,
      max_tokens: request.maxOutputTokens,
      ...(stream ? { stream: true, stream_options: { include_usage: true } } : {})
    })
    const body = request.responseSchema
      ? `${fields.slice(0, -1)},"response_format":${responseFormat(request.responseSchema)}}`
      : fields
    for (let retry = 0; ; retry++) {
      let status: number | undefined
      let retryAfterMs: number | undefined
      try {
        const res = await pool.request({
          path,
          method: 'POST',
          headers,
          body,
          signal: request.signal,
          headersTimeout: options.timeoutMs,
          bodyTimeout: options.timeoutMs
        })
        if (res.statusCode >= 200 && res.statusCode < 300) return res
        status = res.statusCode
        const retryAfter = res.headers['retry-after']
        retryAfterMs = parseRetryAfter(Array.isArray(retryAfter) ? retryAfter[0] : retryAfter)
        // Read (a little of) the error body so the connection can be reused; its failure changes nothing.
        await res.body.dump().catch(() => {})
      } catch (error) {
        if (request.signal?.aborted) throw new CancelledError('The request was cancelled')
        if (isTimeout(error)) {
          throw withDetails(new LlmTimeoutError(`${request.model} did not answer within ${options.timeoutMs} ms`), {
            model: request.model
          })
        }
      }
      if ((status === undefined || RETRYABLE.has(status)) && retry < options.retry.maxRetries) {
        const delayMs = backoffDelay(retry, options.retry, retryAfterMs)
        options.onEvent?.('retry', { model: request.model, status, retry: retry + 1, delayMs })
        await sleep(delayMs, request.signal)
        continue
      }
      throw withDetails(
        new LlmUnavailableError(
          `The model ${request.model} is unavailable (${status ? `HTTP ${status}` : 'network error'}) ` +
            `after ${retry + 1} attempt(s)`
        ),
        { model: request.model, status, attempts: retry + 1 }
      )
    }
  }

  return {
    name: 'openai',
    async generate (request) {
      const res = await post(request, false)
      let payload: unknown
      try {
        payload = await res.body.json()
        if (!Completion.Check(payload)) throw new Error('the answer does not have the shape of a chat completion')
      } catch (error) {
        if (request.signal?.aborted) throw new CancelledError('The request was cancelled')
        if (isTimeout(error)) {
          throw withDetails(new LlmTimeoutError(`${request.model} did not answer within ${options.timeoutMs} ms`), {
            model: request.model
          })
        }
        throw withDetails(new LlmUnavailableError(`Unreadable answer from ${request.model}`), {
          model: request.model,
          reason: reason(error)
        })
      }
      const text = payload.choices?.[0]?.message?.content ?? ''
      return {
        text,
        json: request.responseSchema ? parseModelJson(text) : undefined,
        usage: toUsage(payload.usage ?? undefined, request, text.length),
        model: request.model
      }
    },
    async * stream (request): AsyncIterable<StreamChunk> {
      const res = await post(request, true)
      let outputChars = 0
      let usage: OpenAiUsage | undefined
      // SSE, line by line: `data:` lines gather into one event, which a blank line dispatches. Only the
      // unfinished last line of a chunk is carried over to the next.
      let pending = ''
      let data = ''
      try {
        res.body.setEncoding('utf8')
        for await (const chunk of res.body as AsyncIterable<string>) {
          const lines = pending ? pending + chunk : chunk
          let start = 0
          let newline: number
          while ((newline = lines.indexOf('\n', start)) !== -1) {
            const end = newline > start && lines.charCodeAt(newline - 1) === 13 ? newline - 1 : newline
            if (end === start) {
              if (data && data !== '[DONE]') {
                const event: unknown = JSON.parse(data)
                if (!Chunk.Check(event)) throw new Error('a stream event does not have the shape of a chunk')
                usage = event.usage ?? usage
                const delta = event.choices?.[0]?.delta?.content
                if (delta) {
                  outputChars += delta.length
                  yield { type: 'delta', delta }
                }
              }
              data = ''
            } else if (lines.startsWith('data:', start)) {
              const value = lines.slice(lines.charCodeAt(start + 5) === 32 ? start + 6 : start + 5, end)
              data = data ? `${data}\n${value}` : value
            }
            start = newline + 1
          }
          pending = start < lines.length ? lines.slice(start) : ''
        }
      } catch (error) {
        if (request.signal?.aborted) throw new CancelledError('The request was cancelled')
        if (isTimeout(error)) {
          throw withDetails(new LlmTimeoutError(`${request.model} stopped streaming for ${options.timeoutMs} ms`), {
            model: request.model
          })
        }
        throw withDetails(new LlmUnavailableError(`The stream from ${request.model} failed`), {
          model: request.model,
          reason: reason(error)
        })
      } finally {
        // A consumer that stopped early (or a failure above) leaves the body unread: end the upstream request.
        if (!res.body.readableEnded) res.body.destroy()
      }
      yield { type: 'done', usage: toUsage(usage, request, outputChars), model: request.model }
    },
    async check () {
      return {
        ok: true,
        message: `openai-compatible provider configured at ${url.host}; no request is made by this check`
      }
    }
  }
}

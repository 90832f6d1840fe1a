// Optional OpenAI-compatible provider (OPENAI_BASE_URL: vLLM, llama.cpp, Ollama, LiteLLM…) over plain
// fetch to /v1/chat/completions, with json_schema structured output, the same retry policy and timeout
// as Gemini, and SSE streaming with usage (stream_options.include_usage).
import { Type, type Static } from 'typebox'
import { Value } from 'typebox/value'
import { CancelledError, LlmTimeoutError, LlmUnavailableError, withDetails } from '../errors.js'
import { parseModelJson } from './json.js'
import { backoffDelay, parseRetryAfter, sleep, type RetryPolicy } from './retry.js'
import { estimateTokens } from './tokens.js'
import type { GenerateRequest, LlmProvider, StreamChunk, Usage } from './types.js'

export interface OpenAiOptions {
  baseUrl: string
  apiKey?: string
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
const Completion = Type.Object({
  choices: Type.Optional(Type.Array(Type.Object({ message: Type.Optional(Type.Object({ content: MaybeContent })) }))),
  usage: MaybeUsage
})
const Chunk = Type.Object({
  choices: Type.Optional(Type.Array(Type.Object({ delta: Type.Optional(Type.Object({ content: MaybeContent })) }))),
  usage: MaybeUsage
})

const RETRYABLE = new Set([408, 429, 500, 502, 503, 504])

function toUsage (usage: OpenAiUsage | undefined, request: GenerateRequest, text: string): Usage {
  if (!usage) {
    return {
      inputTokens: estimateTokens(request.system + request.prompt),
      outputTokens: estimateTokens(text),
      estimated: true
    }
  }
  return { inputTokens: usage.prompt_tokens ?? 0, outputTokens: usage.completion_tokens ?? 0 }
}

export function createOpenAiProvider (options: OpenAiOptions): LlmProvider {
  const base = options.baseUrl.replace(/\/+$/, '')
  const url = base.endsWith('/v1') ? `${base}/chat/completions` : `${base}/v1/chat/completions`

  /** POSTs with retries; resolves with an ok Response whose body is still unread, and the attempt's timer. */
  async function post (request: GenerateRequest, stream: boolean) {
    const body = JSON.stringify({
      model: request.model,
      messages: [
        { role: 'system', content: request.system },
        { role: 'user', content: request.prompt }
      ],
      temperature: request.temperature,
      max_tokens: request.maxOutputTokens,
      ...(request.responseSchema
        ? { response_format: { type: 'json_schema', json_schema: { name: 'output', schema: request.responseSchema } } }
        : {}),
      ...(stream ? { stream: true, stream_options: { include_usage: true } } : {})
    })
    for (let retry = 0; ; retry++) {
      const timeout = new AbortController()
      let timer = setTimeout(() => timeout.abort(), options.timeoutMs)
      const signal = request.signal ? AbortSignal.any([request.signal, timeout.signal]) : timeout.signal
      const touch = () => { clearTimeout(timer); timer = setTimeout(() => timeout.abort(), options.timeoutMs) }
      const done = () => { clearTimeout(timer); if (!timeout.signal.aborted) timeout.abort() }
      let status: number | undefined
      let retryAfterMs: number | undefined
      try {
        const res = await fetch(url, {
          method: 'POST',
          body,
          signal,
          headers: {
            'content-type': 'application/json',
            ...(options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {})
          }
        })
        if (res.ok) return { res, touch, done, timedOut: () => timeout.signal.aborted && !request.signal?.aborted }
        status = res.status
        retryAfterMs = parseRetryAfter(res.headers.get('retry-after'))
        await res.body?.cancel()
        done()
      } catch (error) {
        done()
        if (request.signal?.aborted) throw new CancelledError('The request was cancelled')
        if (timeout.signal.aborted && !(error instanceof Error && error.message.includes('fetch failed'))) {
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
      const { res, done } = await post(request, false)
      try {
        const payload = Value.Parse(Completion, await res.json())
        const text = payload.choices?.[0]?.message?.content ?? ''
        return {
          text,
          json: request.responseSchema ? parseModelJson(text) : undefined,
          usage: toUsage(payload.usage ?? undefined, request, text),
          model: request.model
        }
      } catch (error) {
        if (request.signal?.aborted) throw new CancelledError('The request was cancelled')
        throw withDetails(new LlmUnavailableError(`Unreadable answer from ${request.model}`), {
          model: request.model,
          reason: error instanceof Error ? error.message : String(error)
        })
      } finally {
        done()
      }
    },
    async * stream (request): AsyncIterable<StreamChunk> {
      const { res, touch, done, timedOut } = await post(request, true)
      let text = ''
      let usage: OpenAiUsage | undefined
      let buffer = ''
      try {
        const decoder = new TextDecoder()
        if (!res.body) throw new Error('the answer has no body')
        for await (const bytes of res.body) {
          touch()
          buffer += decoder.decode(bytes, { stream: true })
          let end: number
          while ((end = buffer.indexOf('\n\n')) !== -1) {
            const frame = buffer.slice(0, end).trim()
            buffer = buffer.slice(end + 2)
            if (!frame.startsWith('data:')) continue
            const data = frame.slice(5).trim()
            if (data === '[DONE]') continue
            const event = Value.Parse(Chunk, JSON.parse(data))
            usage = event.usage ?? usage
            const delta = event.choices?.[0]?.delta?.content
            if (delta) { text += delta; yield { type: 'delta', delta } }
          }
        }
      } catch (error) {
        if (request.signal?.aborted) throw new CancelledError('The request was cancelled')
        if (timedOut()) {
          throw withDetails(new LlmTimeoutError(`${request.model} stopped streaming for ${options.timeoutMs} ms`), {
            model: request.model
          })
        }
        throw withDetails(new LlmUnavailableError(`The stream from ${request.model} failed`), {
          model: request.model,
          reason: error instanceof Error ? error.message : String(error)
        })
      } finally {
        done()
      }
      yield { type: 'done', usage: toUsage(usage, request, text), model: request.model }
    },
    async check () {
      return {
        ok: true,
        message: `openai-compatible provider configured at ${new URL(url).host}; no request is made by this check`
      }
    }
  }
}

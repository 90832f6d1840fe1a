// The Gemini provider on @google/genai (the maintained SDK; @google/generative-ai reached end of life on
// 2025-08-31). Structured output via responseJsonSchema; our own retry loop (exponential backoff, full
// jitter, Retry-After honoured and capped) on 429/5xx and network errors; a per-call timeout (idle timeout
// while streaming); pro → flash fallback when the pro model answers 404/503; the caller's signal aborts
// the HTTP request.
import { ApiError, GoogleGenAI, type GenerateContentParameters, type GenerateContentResponse } from '@google/genai'
import { CancelledError, LlmTimeoutError, LlmUnavailableError, withDetails } from '../errors.js'
import { parseModelJson, toProviderSchema } from './json.js'
import { backoffDelay, parseRetryAfter, sleep, type RetryPolicy } from './retry.js'
import { estimateTokens, tokensForChars } from './tokens.js'
import type { CallSignal, GenerateRequest, GenerateResult, LlmProvider, StreamChunk, Usage } from './types.js'

export interface GeminiOptions {
  apiKey: string
  baseUrl?: string
  flashModel: string
  proModel: string
  timeoutMs: number
  retry: RetryPolicy
  /** Told about retries and fallbacks (the plugin passes the app logger). */
  onEvent?(event: 'retry' | 'fallback', details: Record<string, unknown>): void
}

const RETRYABLE = new Set([408, 429, 500, 502, 503, 504])
const PRO_UNAVAILABLE = new Set([404, 503])

/**
 * One HTTP attempt's abort plumbing: a signal (fetch needs a real one) aborted by the caller's signal, followed
 * by a listener removed at close, or by a resettable timeout.
 */
function attemptControl (timeoutMs: number, caller?: CallSignal) {
  const controller = new AbortController()
  let timedOut = false
  const arm = () => setTimeout(() => { timedOut = true; controller.abort(new Error('LLM timeout')) }, timeoutMs)
  let timer = arm()
  const follow = () => controller.abort(caller?.reason)
  if (caller?.aborted) follow()
  else caller?.addEventListener('abort', follow, { once: true })
  return {
    signal: controller.signal,
    get timedOut () { return timedOut },
    /** Restarts the timeout (a stream that keeps producing is not hung). */
    touch () { clearTimeout(timer); timer = arm() },
    close () {
      clearTimeout(timer)
      caller?.removeEventListener('abort', follow)
      if (!controller.signal.aborted) controller.abort()
    }
  }
}

type Attempt = ReturnType<typeof attemptControl>

interface Failure {
  kind: 'cancelled' | 'timeout' | 'retryable' | 'fatal'
  status?: number
  retryAfterMs?: number
  message: string
}

function classify (
  error: unknown,
  attempt: Attempt,
  caller: CallSignal | undefined,
  retryAfter: string | null
): Failure {
  if (caller?.aborted) return { kind: 'cancelled', message: 'The request was cancelled' }
  if (attempt.timedOut) return { kind: 'timeout', message: 'timed out' }
  if (error instanceof ApiError) {
    return {
      kind: RETRYABLE.has(error.status) ? 'retryable' : 'fatal',
      status: error.status,
      retryAfterMs: parseRetryAfter(retryAfter),
      message: `HTTP ${error.status}`
    }
  }
  // fetch failed, connection reset, truncated body…: transient network trouble.
  return { kind: 'retryable', message: error instanceof Error ? error.message : String(error) }
}

function usageOf (response: GenerateContentResponse | undefined, request: GenerateRequest, outputChars: number): Usage {
  const meta = response?.usageMetadata
  if (!meta) {
    return {
      inputTokens: estimateTokens(request.system + request.prompt),
      outputTokens: tokensForChars(outputChars),
      estimated: true
    }
  }
  // Thinking tokens are billed as output on the 2.5 models.
  return {
    inputTokens: meta.promptTokenCount ?? 0,
    outputTokens: (meta.candidatesTokenCount ?? 0) + (meta.thoughtsTokenCount ?? 0)
  }
}

export function createGeminiProvider (options: GeminiOptions): LlmProvider {
  const ai = new GoogleGenAI({
    apiKey: options.apiKey,
    httpOptions: options.baseUrl ? { baseUrl: options.baseUrl } : undefined
  })
  const { flashModel, proModel, timeoutMs, retry: policy } = options

  function params (
    model: string,
    request: GenerateRequest,
    signal: AbortSignal,
    onResponse: (res: Response) => void
  ): GenerateContentParameters {
    return {
      model,
      contents: request.prompt,
      config: {
        systemInstruction: request.system,
        temperature: request.temperature,
        maxOutputTokens: request.maxOutputTokens,
        ...(request.responseSchema
          ? { responseMimeType: 'application/json', responseJsonSchema: toProviderSchema(request.responseSchema) }
          : {}),
        abortSignal: signal,
        // Our fetch, to read Retry-After (the SDK's ApiError keeps only the status).
        httpOptions: {
          fetch: async (input, init) => {
            const res = await fetch(input, init)
            onResponse(res)
            return res
          }
        }
      }
    }
  }

  /** Runs `call` under the retry and fallback policy; resolves with the call's value and the model that answered. */
  async function withPolicy<T> (
    request: GenerateRequest,
    call: (model: string, attempt: Attempt, onResponse: (res: Response) => void) => Promise<T>
  ): Promise<{ value: T; model: string }> {
    const models = request.model === proModel && proModel !== flashModel ? [proModel, flashModel] : [request.model]
    for (const [index, model] of models.entries()) {
      const canFallBack = index < models.length - 1
      for (let retry = 0; ; retry++) {
        const attempt = attemptControl(timeoutMs, request.signal)
        let retryAfter: string | null = null
        try {
          return {
            value: await call(model, attempt, res => {
              retryAfter = res.headers.get('retry-after')
            }),
            model
          }
        } catch (error) {
          attempt.close()
          const failure = classify(error, attempt, request.signal, retryAfter)
          if (failure.kind === 'cancelled') throw new CancelledError(failure.message)
          if (failure.kind === 'timeout') {
            throw withDetails(new LlmTimeoutError(`${model} did not answer within ${timeoutMs} ms`), {
              model,
              timeoutMs
            })
          }
          if (canFallBack && failure.status !== undefined && PRO_UNAVAILABLE.has(failure.status)) {
            options.onEvent?.('fallback', { from: model, to: models[index + 1], status: failure.status })
            break
          }
          if (failure.kind === 'retryable' && retry < policy.maxRetries) {
            const delayMs = backoffDelay(retry, policy, failure.retryAfterMs)
            options.onEvent?.('retry', {
              model,
              status: failure.status,
              reason: failure.message,
              retry: retry + 1,
              delayMs
            })
            await sleep(delayMs, request.signal)
            continue
          }
          throw withDetails(
            new LlmUnavailableError(
              `The model ${model} is unavailable (${failure.message}) after ${retry + 1} attempt(s)`
            ),
            { model, status: failure.status, attempts: retry + 1 }
          )
        }
      }
    }
    throw new LlmUnavailableError('No model available')
  }

  return {
    name: 'gemini',

    async generate (request): Promise<GenerateResult> {
      const { value: response, model } = await withPolicy(request, async (model, attempt, onResponse) => {
        try {
          return await ai.models.generateContent(params(model, request, attempt.signal, onResponse))
        } finally {
          attempt.close()
        }
      })
      const text = response.text ?? ''
      return {
        text,
        json: request.responseSchema ? parseModelJson(text) : undefined,
        usage: usageOf(response, request, text.length),
        model
      }
    },

    async * stream (request): AsyncIterable<StreamChunk> {
      const { value: opened, model } = await withPolicy(request, async (model, attempt, onResponse) => {
        // HTTP errors surface here, before the first chunk, so they are retried.
        return {
          chunks: await ai.models.generateContentStream(params(model, request, attempt.signal, onResponse)),
          attempt
        }
      })
      const { chunks, attempt } = opened
      let outputChars = 0
      let last: GenerateContentResponse | undefined
      try {
        for await (const chunk of chunks) {
          attempt.touch()
          last = chunk.usageMetadata ? chunk : last
          const delta = chunk.text
          if (delta) {
            outputChars += delta.length
            yield { type: 'delta', delta }
          }
        }
      } catch (error) {
        const failure = classify(error, attempt, request.signal, null)
        if (failure.kind === 'cancelled') throw new CancelledError(failure.message)
        if (failure.kind === 'timeout') {
          throw withDetails(new LlmTimeoutError(`${model} stopped streaming for ${timeoutMs} ms`), { model, timeoutMs })
        }
        throw withDetails(new LlmUnavailableError(`The stream from ${model} failed: ${failure.message}`), {
          model,
          status: failure.status
        })
      } finally {
        // Also runs when the consumer stops early: the HTTP request is aborted.
        attempt.close()
      }
      yield { type: 'done', usage: usageOf(last, request, outputChars), model }
    },

    async check () {
      return { ok: true, message: `gemini configured (${flashModel} / ${proModel}); no request is made by this check` }
    }
  }
}

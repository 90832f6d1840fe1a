// The offline provider: the default when no model is configured. Deterministic and instant; builds
// schema-valid output from the request (per-method builders supplied by the agents, else a sampler
// driven by the output schema), streams it in chunks, and reports usage as ≈ chars/4 with model 'offline'.
import type { TSchema } from 'typebox'
import { Compile, type Validator } from 'typebox/compile'
import { CancelledError } from '../errors.js'
import { sampleFromSchema } from './sample.js'
import { estimateTokens } from './tokens.js'
import type { CallSignal, GenerateRequest, GenerateResult, LlmProvider, StreamChunk } from './types.js'

export type OfflineBuilder = (task: { agent: string, method: string, input: unknown }) => unknown

export interface OfflineOptions {
  /** Returns the method's offline output, or undefined when the method has no builder. */
  build?: OfflineBuilder
  /** Characters per streamed chunk. */
  chunkSize?: number
}

export const OFFLINE_MODEL = 'offline'

function hintOf (request: GenerateRequest): string {
  const input = request.task?.input
  if (typeof input !== 'object' || input === null) return ''
  for (const key of ['destination', 'topic', 'idea', 'industry', 'to']) {
    const value: unknown = Reflect.get(input, key)
    if (typeof value === 'string') return value
  }
  return ''
}

const validators = new WeakMap<object, Validator>()

function valid (schema: object, value: unknown): boolean {
  let check = validators.get(schema)
  if (!check) {
    check = Compile(schema as TSchema)
    validators.set(schema, check)
  }
  return check.Check(value)
}

function answer (request: GenerateRequest, build?: OfflineBuilder): string {
  if (!request.responseSchema) {
    const asked = request.prompt.replace(/\s+/g, ' ').trim().slice(0, 240)
    return `Offline mode (no LLM configured): this is a placeholder answer to "${asked}".`
  }
  let value = request.task && build ? build(request.task) : undefined
  if (value === undefined || !valid(request.responseSchema, value)) {
    value = sampleFromSchema(request.responseSchema, hintOf(request))
  }
  return JSON.stringify(value)
}

function throwIfAborted (signal?: CallSignal) {
  if (signal?.aborted) throw new CancelledError('The request was cancelled')
}

export function createOfflineProvider (options: OfflineOptions = {}): LlmProvider {
  const chunkSize = options.chunkSize ?? 48

  function result (request: GenerateRequest): GenerateResult {
    const text = answer(request, options.build)
    return {
      text,
      json: request.responseSchema ? JSON.parse(text) : undefined,
      usage: { inputTokens: estimateTokens(request.system + request.prompt), outputTokens: estimateTokens(text) },
      model: OFFLINE_MODEL
    }
  }

  return {
    name: 'offline',
    async generate (request) {
      throwIfAborted(request.signal)
      return result(request)
    },
    async * stream (request): AsyncIterable<StreamChunk> {
      throwIfAborted(request.signal)
      const { text, usage, model } = result(request)
      for (let at = 0; at < text.length; at += chunkSize) {
        // Yield to the event loop between chunks so a slow consumer or an abort can interleave.
        await new Promise(resolve => setImmediate(resolve))
        throwIfAborted(request.signal)
        yield { type: 'delta', delta: text.slice(at, at + chunkSize) }
      }
      yield { type: 'done', usage, model }
    },
    async check () {
      return { ok: true, message: 'offline provider: deterministic local output, no model is called' }
    }
  }
}

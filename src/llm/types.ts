// The provider interface every LLM backend implements (gemini, offline, openai-compatible).
// Framework-free: no Fastify import anywhere under src/llm.

export interface Usage {
  inputTokens: number
  outputTokens: number
  /** True when the provider sent no usage (abort, error, timeout) and the counts were estimated from text. */
  estimated?: boolean
}

/**
 * What aborts a provider call: the reading and listening half of an AbortSignal (an AbortSignal is one). The
 * agent service passes a lighter object of its own (src/agents/call-abort.ts); undici takes either.
 */
export interface CallSignal {
  readonly aborted: boolean
  readonly reason: unknown
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void
  removeEventListener(type: 'abort', listener: () => void): void
}

export interface GenerateRequest {
  /** Concrete model name, e.g. gemini-2.5-flash, or 'offline'. */
  model: string
  system: string
  prompt: string
  /** JSON schema the output must follow (structured output). */
  responseSchema?: object
  /** The agent and method being served (the offline provider derives its output from these). */
  task?: { agent: string, method: string, input: unknown }
  temperature?: number
  maxOutputTokens?: number
  signal?: CallSignal
}

export interface GenerateResult {
  text: string
  /** Parsed JSON when a responseSchema was given and the text parsed. */
  json?: unknown
  usage: Usage
  /** The model that actually answered (after any pro → flash fallback). */
  model: string
}

export type StreamChunk =
  | { type: 'delta', delta: string }
  | { type: 'done', usage: Usage, model: string }

export interface LlmProvider {
  readonly name: 'gemini' | 'offline' | 'openai'
  generate(request: GenerateRequest): Promise<GenerateResult>
  /** Yields text deltas, then exactly one 'done' chunk with usage. Aborting `signal` aborts the HTTP request. */
  stream(request: GenerateRequest): AsyncIterable<StreamChunk>
  /** Cheap, free check for /api/health (no paid call). */
  check(): Promise<{ ok: boolean, message: string }>
}

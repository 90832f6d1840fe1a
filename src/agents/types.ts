// The contract between agents, the agent service and its consumers (routes, streams, coordinator,
// management, rate limits and budgets). Framework-free: no Fastify import under src/agents.
import type { Static, TSchema } from 'typebox'
import type { Caller } from '../auth/roles.js'
import type { Usage } from '../llm/types.js'
import type { CallController, CallSignal } from './call-abort.js'

export type AgentName = 'travel' | 'content' | 'innovation'
export type ModelTier = 'flash' | 'pro'

/** A cross-field problem found by a method's refine(); it becomes one `details` entry of a 400. */
export interface FieldProblem { field: string, message: string }

/** Top-level keys of an output whose value is an array (the ones a stream can report item by item). */
export type ArrayKeys<T> = { [K in keyof T & string]: T[K] extends readonly unknown[] ? K : never }[keyof T & string]

/**
 * What a stream route streams besides tokens: each element of the output array `property`, as soon as the
 * model has written it, as a `partial` or `post` event.
 */
export interface StreamItems<Output = unknown> {
  event: 'partial' | 'post'
  property: ArrayKeys<Output>
}

/**
 * One agent method as written in its file (DESIGN §5): schemas, prompt, cache TTL and rate limit live with
 * the method. Every callback receives `Static<typeof input>` (the input after validation, defaults filled
 * in) and returns `Static<typeof output>`, so method files need no casts.
 */
export interface MethodSpec<I extends TSchema, O extends TSchema> {
  name: string
  summary: string
  input: I
  output: O
  /** Seconds a response stays cached. */
  cacheTtl: number
  /** Requests per minute per caller for this method. */
  rateLimit: number
  /** Overrides the agent's default model tier. */
  model?: ModelTier
  /** Sampling temperature for this method (provider default when unset). */
  temperature?: number
  /** Builds the LLM prompt from the validated input. */
  prompt(input: Static<I>): { system: string, prompt: string }
  /** Methods that compose others (createCompletePackage) or call outside APIs (searchHotels) run here. */
  run?(input: Static<I>, ctx: MethodContext<Static<O>>): Promise<Static<O>>
  /** Cross-field checks the schema cannot express (checkout after checkin); problems become a 400. */
  refine?(input: Static<I>): FieldProblem[]
  /** Deterministic output built from the input, used by the offline provider (must validate against `output`). */
  offline?(input: Static<I>): Static<O>
  /** The output array a stream route reports item by item (recommendations, posts). */
  streamItems?: StreamItems<Static<O>>
}

/**
 * A method as the agent service and its consumers see it: the schemas' static types erased. The service
 * validates the input against `input` before any callback runs, so callbacks get what they were typed for.
 */
export interface AgentMethod extends Omit<
  MethodSpec<TSchema, TSchema>,
  'prompt' | 'run' | 'refine' | 'offline' | 'streamItems'
> {
  prompt(input: ValidInput): { system: string; prompt: string }
  run?(input: ValidInput, ctx: MethodContext): Promise<unknown>
  refine?(input: ValidInput): FieldProblem[]
  offline?(input: ValidInput): unknown
  streamItems?: { event: StreamItems['event']; property: string }
}

/** A method input after validation: a JSON object. */
export type ValidInput = Record<string, unknown>

/** Declares a method: infers the static types of `input` and `output` for every callback. */
export function defineMethod<I extends TSchema, O extends TSchema> (spec: MethodSpec<I, O>): AgentMethod {
  // Erasure only: the service validates every input against spec.input and output against spec.output.
  return spec as unknown as AgentMethod
}

export interface AgentDefinition {
  name: AgentName
  description: string
  defaultModel: ModelTier
  /** Requests per minute per caller across all methods of the agent. */
  rateLimit: number
  capabilities: string[]
  methods: Record<string, AgentMethod>
}

/** Declares an agent from its list of methods (keyed by their names). */
export function defineAgent (
  agent: Omit<AgentDefinition, 'methods'> & { methods: readonly AgentMethod[] }
): AgentDefinition {
  return { ...agent, methods: Object.fromEntries(agent.methods.map(method => [method.name, method])) }
}

/** What a method's custom run() can use. */
export interface MethodContext<Output = unknown> {
  /** Calls the LLM with this method's prompt and schema (validated, repaired once). */
  generate(input: ValidInput): Promise<Output>
  /**
   * Invokes another method of any agent (counted, cached and traced like a top-level call). `output` is that
   * method's output schema: the result was validated against it, and it types the result.
   */
  invoke<O extends TSchema>(agent: AgentName, method: string, input: ValidInput, output: O): Promise<Static<O>>
  signal: AbortSignal
}

export interface InvokeRequest {
  agent: AgentName
  method: string
  input: Record<string, unknown>
  caller: Caller | null
  signal?: CallSignal
  /**
   * A controller the caller made for this call alone (a stream's session, an invoke route's disconnect), used
   * instead of `signal`: shutdown aborts it (reason 'shutdown') rather than a controller of the call's own
   * (issue 16: ~0.9 KB per stream), and a LazyAbortController is its own light signal (no AbortSignal).
   */
  controller?: CallController
  /** Skip the response cache (Cache-Control: no-cache or no-store, see cacheBypass). */
  noCache?: boolean
  /** Receives text deltas as the provider streams them (SSE token events). */
  onDelta?: (delta: string) => void
  /** Links this call into an enclosing trace (stream or workflow run). */
  parentTraceId?: string
  /** Stored in the usage ledger. */
  streamId?: string
  runId?: string
}

export interface InvokeUsage {
  inputTokens: number
  outputTokens: number
  costUsd: number
  model: string
  estimated?: boolean
}

export interface InvokeResult {
  data: unknown
  usage: InvokeUsage
  cached: boolean
  durationMs: number
  traceId: string
}

/** One finished LLM call, emitted to listeners (stats, tracing, metrics, budgets). */
export interface LlmCallRecord {
  traceId: string
  parentTraceId?: string
  agent: AgentName
  method: string
  model: string
  caller: Caller | null
  usage: Usage
  costUsd: number
  status: 'success' | 'error' | 'cancelled'
  error?: { code: string, message: string }
  startedAt: number
  durationMs: number
  timeToFirstTokenMs?: number
  prompt: { system: string, prompt: string }
  output?: unknown
}

/** One finished agent invocation (cached or not). */
export interface InvocationRecord {
  traceId: string
  parentTraceId?: string
  agent: AgentName
  method: string
  caller: Caller | null
  input: unknown
  output?: unknown
  status: 'success' | 'error' | 'cancelled'
  error?: { code: string, message: string }
  cached: boolean
  usage: InvokeUsage
  startedAt: number
  durationMs: number
}

/** Hooks consumers register on the agent service. `beforeLlmCall` may throw (budget exceeded) to stop the call. */
export interface AgentServiceHooks {
  beforeLlmCall?(call: {
    agent: AgentName
    method: string
    model: string
    caller: Caller | null
    estimatedTokens: number
    estimatedCostUsd: number
  }): Promise<{ release?(actual: { tokens: number; costUsd: number }): Promise<void> } | void>
  onLlmCall?(record: LlmCallRecord): void
  onInvocation?(record: InvocationRecord): void
}

export type { Usage }

// The contract between agents, the agent service and its consumers (routes, streams, coordinator,
// management, rate limits and budgets). Framework-free: no Fastify import under src/agents.
import type { TSchema } from 'typebox'
import type { Caller } from '../auth/roles.js'
import type { Usage } from '../llm/types.js'

export type AgentName = 'travel' | 'content' | 'innovation'
export type ModelTier = 'flash' | 'pro'

/** One agent method: schemas, prompt, cache TTL and rate limit live with the method (DESIGN §5). */
export interface AgentMethod {
  name: string
  summary: string
  input: TSchema
  output: TSchema
  /** Seconds a response stays cached. */
  cacheTtl: number
  /** Requests per minute per caller for this method. */
  rateLimit: number
  /** Overrides the agent's default model tier. */
  model?: ModelTier
  /** Builds the LLM prompt from the validated input. */
  prompt(input: Record<string, unknown>): { system: string, prompt: string }
  /** Methods that compose others (createCompletePackage) or call outside APIs (searchHotels) run here. */
  run?(input: Record<string, unknown>, ctx: MethodContext): Promise<unknown>
  /** Cross-field checks the schema cannot express (checkout after checkin); problems become a 400. */
  refine?(input: Record<string, unknown>): Array<{ field: string, message: string }>
  /** Deterministic output built from the input, used by the offline provider (must validate against `output`). */
  offline?(input: Record<string, unknown>): unknown
  /** Sampling temperature for this method (provider default when unset). */
  temperature?: number
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

/** What a method's custom run() can use. */
export interface MethodContext {
  /** Calls the LLM with this method's prompt and schema (validated, repaired once). */
  generate(input: Record<string, unknown>): Promise<unknown>
  /** Invokes another method of any agent (counted, cached and traced like a top-level call). */
  invoke(agent: AgentName, method: string, input: Record<string, unknown>): Promise<unknown>
  signal: AbortSignal
}

export interface InvokeRequest {
  agent: AgentName
  method: string
  input: Record<string, unknown>
  caller: Caller | null
  signal?: AbortSignal
  /** Skip the response cache (Cache-Control: no-cache). */
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
  beforeLlmCall?(call: { agent: AgentName, method: string, model: string, caller: Caller | null, estimatedTokens: number, estimatedCostUsd: number }): Promise<{ release?(actual: { tokens: number, costUsd: number }): Promise<void> } | void>
  onLlmCall?(record: LlmCallRecord): void
  onInvocation?(record: InvocationRecord): void
}

export type { Usage }

// Types of the coordinator: workflow specs as clients send them, step and run results, engine events,
// the engine's dependencies, and runs as the service hands them out. Framework-free.
import type { Caller } from '../auth/roles.js'
import type { InvokeResult } from '../agents/types.js'
import type { CallSignal } from '../llm/types.js'

export type Strategy = 'sequential' | 'parallel' | 'hierarchical'
export type AggregatorName = 'merge' | 'collect' | 'master-summary'
export type JsonObject = Record<string, unknown>

/** One agent call in a workflow. `input` may hold `{ "$ref": "…" }` data references. */
export interface StepSpec {
  id?: string
  agent: string
  method: string
  input?: JsonObject
}

export interface SequentialSpec {
  strategy: 'sequential'
  steps: StepSpec[]
  input?: JsonObject
  onError?: 'stop' | 'continue'
  timeoutMs?: number
}

export interface ParallelSpec {
  strategy: 'parallel'
  tasks: StepSpec[]
  input?: JsonObject
  concurrency?: number
  timeoutMs?: number
}

export interface HierarchicalSpec {
  strategy: 'hierarchical'
  master: StepSpec
  subAgents: StepSpec[]
  input?: JsonObject
  aggregator?: AggregatorName
  concurrency?: number
  timeoutMs?: number
}

export type WorkflowSpec = SequentialSpec | ParallelSpec | HierarchicalSpec

export type StepRole = 'step' | 'task' | 'master' | 'sub-agent'
/** `interrupted`: the step was running when its replica stopped (set only on a run marked AMK_INTERRUPTED). */
export type StepStatus =
  'pending' | 'running' | 'completed' | 'failed' | 'timed_out' | 'cancelled' | 'skipped' | 'interrupted'
export type RunStatus = 'running' | 'completed' | 'failed' | 'cancelled'

export interface StepUsage {
  inputTokens: number
  outputTokens: number
  costUsd: number
  model?: string
  estimated?: boolean
}

export interface StepError {
  code: string
  message: string
  details?: unknown
}

export interface StepResult {
  index: number
  id?: string
  role: StepRole
  agent: string
  method: string
  status: StepStatus
  data?: unknown
  error?: StepError
  usage: StepUsage
  cached: boolean
  startedAt?: string
  finishedAt?: string
  durationMs: number
  traceId?: string
}

export interface RunTotals { inputTokens: number, outputTokens: number, costUsd: number }

export interface RunOutcome {
  status: Exclude<RunStatus, 'running'>
  steps: StepResult[]
  result: unknown
  error?: StepError
  usage: RunTotals
  durationMs: number
}

export interface StepRef { index: number, id?: string, role: StepRole, agent: string, method: string, path: string }

/** What the engine reports while it runs (the SSE route turns these into events). */
export type EngineEvent =
  | { event: 'step-started', data: StepRef & { startedAt: string } }
  | { event: 'token', data: { index: number, path: string, chunk: string, seq: number } }
  | { event: 'step-completed', data: StepResult }
  | { event: 'step-failed', data: StepResult }

/** One agent call the engine asks for; the service adds the caller, run id and trace id. */
export interface StepCall {
  index: number
  agent: string
  method: string
  input: JsonObject
  signal: CallSignal
  onDelta?: (delta: string) => void
}

export interface FieldProblem { field: string, message: string }

/** The agents and methods a workflow may call, and their input validation. */
export interface Catalog {
  /** agent → method names. */
  methods(): Record<string, string[]>
  /** Problems of `input` against the method's input schema (empty when valid); null when the method is unknown. */
  validate(agent: string, method: string, input: unknown): FieldProblem[] | null
}

export interface EngineDeps {
  /**
   * Runs one agent method. A thrown error may carry `usage` (tokens spent before it failed). It must not change
   * `call.input`, which may share objects with the plan and with an earlier step's data (the agent service
   * validates a copy).
   */
  invoke(call: StepCall): Promise<InvokeResult>
  catalog: Catalog
  /** Per-step timeout when the workflow sets none. */
  stepTimeoutMs: number
  /** How long an aborted call may take to settle (and report its usage) before the engine moves on. */
  abortGraceMs?: number
  /** Unexpected (non-AMK) step errors, for the log. */
  onUnexpectedError?(error: unknown, step: StepRef): void
}

export interface RunOptions {
  signal: CallSignal
  onEvent?(event: EngineEvent): void
  /** Stream provider tokens (token events); otherwise each call is a plain generate. */
  streamTokens?: boolean
}

export type RunKind = Strategy | 'workflow'

/** A run as the API returns it (stored or live). */
export interface RunView {
  runId: string
  traceId: string
  strategy: Strategy
  workflowName?: string
  status: RunStatus
  success: boolean
  steps: StepResult[]
  result: unknown
  error?: StepError
  usage: RunTotals
  createdAt: string
  startedAt?: string
  finishedAt?: string
  durationMs?: number
  cancelRequested: boolean
}

export interface StartRequest {
  caller: Caller
  kind: RunKind
  /** The request body as sent: stored with the run and fingerprinted for the Idempotency-Key. */
  body: unknown
  spec: WorkflowSpec
  workflowName?: string
  idempotencyKey?: string
  noCache?: boolean
  streamTokens?: boolean
  /** Stops waiting on a joined run (its client went away); never cancels the run. */
  signal?: AbortSignal
}

export interface RunHandle {
  runId: string
  strategy: string
  workflowName?: string
  steps: StepRef[]
  /** This request joined a run an earlier request with the same Idempotency-Key started. */
  replayed: boolean
  /** Engine events from the start, then live; null when the run executes on another replica. */
  subscribe: ((listener: (event: EngineEvent) => void) => () => void) | null
  done: Promise<RunView>
  /** Cancels the run when this request started it (a streaming client going away); else a no-op. */
  cancel(): void
}

/** A finished run as observers (metrics, tracing) see it. */
export interface FinishedRun { view: RunView, callerId: string, input: unknown, startTime: number, endTime: number }

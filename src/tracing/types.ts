// The run record every producer hands to the tracer (agent calls, LLM calls, streams, workflow runs).
// A run with `parentId` nests under the run of that id — in LangSmith a run tree is exported once its
// root has been recorded, so children may be recorded before their parent (they usually are).

export type RunType = 'chain' | 'llm' | 'tool' | 'retriever' | 'embedding' | 'prompt' | 'parser'

export interface RunUsage {
  inputTokens: number
  outputTokens: number
  costUsd?: number
  model?: string
  /** True when the token counts were estimated (no usage metadata from the provider). */
  estimated?: boolean
}

export interface RunRecord {
  /** Unique id; a UUID is used as the LangSmith run id as is, any other string is mapped to one. */
  id: string
  /** Id of the enclosing run (a workflow, a stream, or the agent call of an LLM run). */
  parentId?: string
  /** Display name, e.g. `travel.searchFlights`, `stream.itinerary`, `workflow.trip-package`. */
  name: string
  runType: RunType
  /** Epoch milliseconds. */
  startTime: number
  endTime: number
  inputs?: Record<string, unknown>
  outputs?: Record<string, unknown>
  /** Set when the run failed; status defaults to 'error' then, else 'success'. */
  error?: { code: string, message: string } | string
  status?: 'success' | 'error' | 'cancelled'
  usage?: RunUsage
  /** When set (and runType is not 'llm'), the run is also listed by GET /api/agents/:agent/traces. */
  agent?: string
  /** Method, stream kind or workflow strategy; defaults to the name. */
  operation?: string
  cached?: boolean
  callerId?: string
  timeToFirstTokenMs?: number
  /** LLM calls made under this run (for the /traces summary). */
  llmCalls?: number
  tags?: string[]
  metadata?: Record<string, unknown>
}

export function errorOf (error: RunRecord['error']): { code: string, message: string } | undefined {
  if (error === undefined) return undefined
  return typeof error === 'string' ? { code: 'ERROR', message: error } : error
}

// The tracer: turns agent-service events (and runs recorded by streams and the coordinator) into
// traces — a summary kept in the per-agent ring buffer for /traces, and a run tree exported to
// LangSmith when configured. Framework-free; src/plugins/tracing.ts wraps it. Nothing here awaits
// the network or throws into the caller.
import { randomUUID } from 'node:crypto'
import type { InvocationRecord, LlmCallRecord } from '../agents/types.js'
import type { LangSmithExporter } from './langsmith-exporter.js'
import type { TraceStore, TraceSummary } from './trace-store.js'
import { errorOf, type RunRecord } from './types.js'

export interface TracerOptions {
  store: TraceStore
  exporter?: LangSmithExporter | null
  log: { warn(obj: object, msg: string): void }
}

/** Per agent call, from its provider calls: how many, the last model, the first one's time to first token. */
interface LlmSummary { calls: number, model?: string, timeToFirstTokenMs?: number }

const MAX_OPEN_INVOCATIONS = 10_000

export class Tracer {
  /** LLM calls seen per agent-call trace id, folded into that call's summary when it ends. */
  private readonly llmByTrace = new Map<string, LlmSummary>()

  constructor (private readonly options: TracerOptions) {}

  get exporting (): boolean { return Boolean(this.options.exporter) }

  /** A new run id (UUID) for a stream or workflow run that agent calls can name as their parentTraceId. */
  newId (): string { return randomUUID() }

  /** Records a finished run. Kept for /traces when it names an agent (LLM runs are folded into their agent call). */
  recordRun (run: RunRecord): void {
    try {
      if (run.runType !== 'llm') {
        const key = run.agent ?? run.name.split('.')[0]
        this.options.store.add(key, this.summarize(run))
      }
      this.options.exporter?.export(run)
    } catch (error) {
      this.options.log.warn(
        { err: error instanceof Error ? error.message : String(error), run: run.name },
        'trace not recorded'
      )
    }
  }

  /** The most recent traces of an agent (or other key), newest first. */
  recent (key: string, limit?: number): TraceSummary[] {
    return this.options.store.recent(key, limit)
  }

  /** Agent-service hook: one provider call, a child of the agent call `record.traceId`. */
  onLlmCall (record: LlmCallRecord): void {
    const seen = this.llmByTrace.get(record.traceId) ?? { calls: 0 }
    seen.calls++
    seen.model = record.model
    seen.timeToFirstTokenMs ??= record.timeToFirstTokenMs
    this.llmByTrace.set(record.traceId, seen)
    for (const oldest of this.llmByTrace.keys()) {
      if (this.llmByTrace.size <= MAX_OPEN_INVOCATIONS) break
      this.llmByTrace.delete(oldest)
    }
    // An LLM run is only exported (/traces folds it into its agent call): without an exporter, building it
    // would render the prompt again for nothing.
    if (!this.options.exporter) return
    this.recordRun({
      id: `${record.traceId}/llm/${seen.calls}`,
      parentId: record.traceId,
      name: record.model,
      runType: 'llm',
      startTime: record.startedAt,
      endTime: record.startedAt + record.durationMs,
      inputs: {
        messages: [
          { role: 'system', content: record.prompt.system },
          { role: 'user', content: record.prompt.prompt }
        ]
      },
      outputs: record.output === undefined ? {} : { output: record.output },
      status: record.status,
      error: record.error,
      usage: { ...record.usage, costUsd: record.costUsd, model: record.model },
      timeToFirstTokenMs: record.timeToFirstTokenMs,
      metadata: { agent: record.agent, method: record.method }
    })
  }

  /** Agent-service hook: one finished agent call (cached or not). */
  onInvocation (record: InvocationRecord): void {
    const llm = this.llmByTrace.get(record.traceId)
    this.llmByTrace.delete(record.traceId)
    // The same usage the ledger holds: the agent service's tally counts every provider call, failed ones (their
    // estimates) and sub-calls included.
    const { usage } = record
    const input =
      record.input !== null && typeof record.input === 'object'
        ? (record.input as Record<string, unknown>)
        : { input: record.input }
    this.recordRun({
      id: record.traceId,
      parentId: record.parentTraceId,
      name: `${record.agent}.${record.method}`,
      runType: 'chain',
      agent: record.agent,
      operation: record.method,
      startTime: record.startedAt,
      endTime: record.startedAt + record.durationMs,
      inputs: input,
      outputs: record.output === undefined ? {} : { output: record.output },
      status: record.status,
      error: record.error,
      cached: record.cached,
      // A cached answer cost nothing this time.
      usage: record.cached
        ? { inputTokens: 0, outputTokens: 0, costUsd: 0, model: record.usage.model }
        : {
            inputTokens: usage.inputTokens,
            outputTokens: usage.outputTokens,
            costUsd: usage.costUsd,
            model: usage.model,
            estimated: usage.estimated
          },
      callerId: record.caller?.id,
      llmCalls: llm?.calls ?? 0,
      timeToFirstTokenMs: llm?.timeToFirstTokenMs,
      metadata: { caller_role: record.caller?.role, cached: record.cached }
    })
  }

  async flush (timeoutMs: number): Promise<boolean> {
    return this.options.exporter ? this.options.exporter.flush(timeoutMs) : true
  }

  async close (timeoutMs: number): Promise<boolean> {
    return this.options.exporter ? this.options.exporter.close(timeoutMs) : true
  }

  private summarize (run: RunRecord): TraceSummary {
    const error = errorOf(run.error)
    return {
      id: run.id,
      ...(run.parentId ? { parentId: run.parentId } : {}),
      name: run.name,
      runType: run.runType,
      ...(run.agent ? { agent: run.agent } : {}),
      operation: run.operation ?? run.name,
      ...(run.usage?.model ? { model: run.usage.model } : {}),
      status: run.status ?? (error ? 'error' : 'success'),
      ...(run.cached !== undefined ? { cached: run.cached } : {}),
      startTime: new Date(run.startTime).toISOString(),
      endTime: new Date(run.endTime).toISOString(),
      durationMs: run.endTime - run.startTime,
      usage: {
        inputTokens: run.usage?.inputTokens ?? 0,
        outputTokens: run.usage?.outputTokens ?? 0,
        costUsd: run.usage?.costUsd ?? 0,
        ...(run.usage?.estimated ? { estimated: true } : {})
      },
      llmCalls: run.llmCalls ?? 0,
      ...(run.timeToFirstTokenMs !== undefined ? { timeToFirstTokenMs: run.timeToFirstTokenMs } : {}),
      ...(run.callerId ? { callerId: run.callerId } : {}),
      ...(error ? { error } : {})
    }
  }
}

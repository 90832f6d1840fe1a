// A run in progress in this process, and the views of runs the API returns. A live run buffers its
// engine events so a request that follows it (the one that started it, or one joining it with the same
// Idempotency-Key) sees every event from the start, then live; `done` settles with the final view.
import { LazyAbortController } from '../agents/call-abort.js'
import type { RunRecord } from './run-store.js'
import type { EngineEvent, RunHandle, RunTotals, RunView, StepRef, StepResult, Strategy } from './types.js'

export const ZERO_TOTALS: RunTotals = { inputTokens: 0, outputTokens: 0, costUsd: 0 }

export class LiveRun {
  /** Light (its own signal): the engine and its steps only read it and listen to it. */
  readonly controller = new LazyAbortController()
  readonly done: Promise<RunView>
  /** An explicit cancel (route or another replica), as opposed to a shutdown or a client going away. */
  cancelRequested = false
  /** The steps as the executor knows them now (newer than the stored row while it runs). */
  steps: StepResult[] = []
  private readonly events: EngineEvent[] = []
  private readonly listeners = new Set<(event: EngineEvent) => void>()
  private settle!: (view: RunView) => void

  constructor (
    readonly runId: string,
    readonly strategy: Strategy,
    readonly workflowName: string | undefined,
    readonly refs: StepRef[]
  ) {
    this.done = new Promise(resolve => {
      this.settle = resolve
    })
  }

  publish (event: EngineEvent): void {
    this.events.push(event)
    for (const listener of this.listeners) {
      try {
        listener(event)
      } catch {}
    }
  }

  finish (view: RunView): void {
    this.listeners.clear()
    this.settle(view)
  }

  abort (reason: Error, requested = false): void {
    if (this.controller.signal.aborted) return
    this.cancelRequested ||= requested
    this.controller.abort(reason)
  }

  /** What a request gets: `replayed` when it joined a run another request started. */
  handle (replayed: boolean, onClientGone: () => Error): RunHandle {
    return {
      runId: this.runId,
      strategy: this.strategy,
      ...(this.workflowName ? { workflowName: this.workflowName } : {}),
      steps: this.refs,
      replayed,
      subscribe: listener => {
        for (const event of this.events) listener(event)
        this.listeners.add(listener)
        return () => {
          this.listeners.delete(listener)
        }
      },
      done: this.done,
      cancel: replayed ? () => {} : () => this.abort(onClientGone())
    }
  }
}

export function viewOf (record: RunRecord): RunView {
  return {
    runId: record.runId,
    traceId: record.runId,
    strategy: record.strategy as Strategy,
    ...(record.workflowName ? { workflowName: record.workflowName } : {}),
    status: record.status,
    success: record.status === 'completed',
    steps: record.steps,
    result: record.result,
    ...(record.error ? { error: record.error } : {}),
    usage: record.usage ?? ZERO_TOTALS,
    createdAt: record.createdAt,
    ...(record.startedAt ? { startedAt: record.startedAt } : {}),
    ...(record.finishedAt ? { finishedAt: record.finishedAt } : {}),
    ...(record.durationMs !== null ? { durationMs: record.durationMs } : {}),
    cancelRequested: record.cancelRequested
  }
}

/** A stored row as this replica knows it better: the outcome it holds while the database could not take it. */
export function recordOf (view: RunView, stored: RunRecord): RunRecord {
  return {
    ...stored,
    status: view.status,
    steps: view.steps,
    result: view.result,
    error: view.error ?? null,
    usage: view.usage,
    finishedAt: view.finishedAt ?? null,
    durationMs: view.durationMs ?? null,
    heartbeatAgeMs: null
  }
}

/** The step references of a stored run (what `run-started` lists when the run executes elsewhere). */
export function refsOf (record: Pick<RunRecord, 'steps'>): StepRef[] {
  return record.steps.map(s => ({
    index: s.index,
    ...(s.id ? { id: s.id } : {}),
    role: s.role,
    agent: s.agent,
    method: s.method,
    path: `${s.agent}.${s.method}`
  }))
}

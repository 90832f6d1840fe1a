// Executes one started run in the background: the engine over the agent service (each call carrying the
// run id as runId and trace parent), events published to the live run's followers, progress stored as
// steps start and finish (throttled, latest snapshot, written again while the database is away), then
// the outcome stored (kept by the outbox until the database takes it) and observers told (metrics,
// tracing); the caller settles the live run with the returned view.
import type { InvokeRequest, InvokeResult } from '../agents/types.js'
import { executePlan, initialSteps, toStepError } from './engine.js'
import { ZERO_TOTALS, type LiveRun } from './live-run.js'
import type { Plan } from './plan.js'
import type { OutcomeOutbox } from './outcome-outbox.js'
import type { RunStore } from './run-store.js'
import type { Catalog, EngineEvent, FinishedRun, RunOutcome, RunView, StartRequest } from './types.js'

export interface ExecutorDeps {
  invoke(request: InvokeRequest): Promise<InvokeResult>
  catalog: Catalog
  store: RunStore
  outbox: OutcomeOutbox
  stepTimeoutMs: number
  abortGraceMs?: number
  /** Least time between two progress writes of a run. */
  progressIntervalMs: number
  observer?: { started?(strategy: string): void, finished?(run: FinishedRun): void }
  log?: { warn(details: object, message: string): void, error(details: object, message: string): void }
}

export async function executeRun (
  run: LiveRun,
  plan: Plan,
  request: StartRequest,
  deps: ExecutorDeps
): Promise<RunView> {
  const { runId } = run
  const createdAt = new Date().toISOString()
  const steps = initialSteps(plan)
  // Progress is stored at most once per progressIntervalMs, always the latest snapshot, never after the
  // end: a run shorter than the interval writes only its row and its outcome. A step that starts is
  // stored at once (so a run whose replica dies shows it interrupted, not "not started").
  // A failed write (database away) leaves the snapshot stale, so it is tried again an interval later.
  const progress = {
    timer: null as NodeJS.Timeout | null,
    writing: null as Promise<void> | null,
    lastWrite: Date.now(),
    stale: false,
    urgent: false,
    ended: false,
    failures: 0
  }
  const write = () => {
    progress.timer = null
    if (progress.ended) return
    progress.stale = false
    progress.urgent = false
    progress.writing = deps.store
      .progress(runId, steps)
      .then(
        () => {
          progress.failures = 0
        },
        err => {
          if (progress.failures++ === 0) deps.log?.warn({ err, runId }, 'could not store workflow progress; retrying')
          progress.stale = true
        }
      )
      .then(() => {
        progress.writing = null
        progress.lastWrite = Date.now()
        if (progress.stale) saveProgress()
      })
  }
  const saveProgress = (now = false) => {
    progress.stale = true
    if (now) progress.urgent = true
    if (progress.writing || progress.ended || (progress.timer && !now)) return
    if (progress.timer) clearTimeout(progress.timer)
    const wait = progress.urgent ? 0 : Math.max(0, progress.lastWrite + deps.progressIntervalMs - Date.now())
    progress.timer = setTimeout(write, wait)
  }
  const onEvent = (event: EngineEvent) => {
    run.publish(event)
    if (event.event === 'step-started') {
      steps[event.data.index] = { ...steps[event.data.index], status: 'running', startedAt: event.data.startedAt }
      saveProgress(true)
    } else if (event.event === 'step-completed' || event.event === 'step-failed') {
      steps[event.data.index] = event.data
      saveProgress()
    }
  }

  deps.observer?.started?.(plan.strategy)
  let outcome: RunOutcome
  try {
    outcome = await executePlan(
      plan,
      {
        catalog: deps.catalog,
        stepTimeoutMs: deps.stepTimeoutMs,
        abortGraceMs: deps.abortGraceMs,
        invoke: call =>
          deps.invoke({
            agent: call.agent as InvokeRequest['agent'],
            method: call.method,
            input: call.input,
            caller: request.caller,
            signal: call.signal,
            ...(call.onDelta ? { onDelta: call.onDelta } : {}),
            ...(request.noCache ? { noCache: true } : {}),
            parentTraceId: runId,
            runId
          }),
        onUnexpectedError: (err, step) =>
          deps.log?.error({ err, runId, step: step.path }, 'workflow step failed unexpectedly')
      },
      { signal: run.controller.signal, onEvent, streamTokens: request.streamTokens }
    )
  } catch (err) {
    deps.log?.error({ err, runId }, 'workflow engine failed')
    outcome = {
      status: 'failed',
      steps,
      result: null,
      error: toStepError(err),
      usage: { ...ZERO_TOTALS },
      durationMs: 0
    }
  }
  progress.ended = true
  if (progress.timer) clearTimeout(progress.timer)
  await progress.writing
  const view: RunView = {
    runId,
    traceId: runId,
    strategy: plan.strategy,
    ...(run.workflowName ? { workflowName: run.workflowName } : {}),
    status: outcome.status,
    success: outcome.status === 'completed',
    steps: outcome.steps,
    result: outcome.result,
    ...(outcome.error ? { error: outcome.error } : {}),
    usage: outcome.usage,
    createdAt,
    startedAt: createdAt,
    finishedAt: new Date().toISOString(),
    durationMs: outcome.durationMs,
    cancelRequested: run.cancelRequested
  }
  await deps.outbox.finish(runId, outcome, view)
  try {
    deps.observer?.finished?.({
      view,
      callerId: request.caller.id,
      input: request.body,
      startTime: Date.parse(createdAt),
      endTime: Date.now()
    })
  } catch (err) {
    deps.log?.warn({ err, runId }, 'workflow observer failed')
  }
  return view
}

// Executes one started run in the background: the engine over the agent service (each call carrying the
// run id as runId and trace parent), events published to the live run's followers, progress stored as
// steps start and finish (a start at once, finishes throttled; only the changed steps; written again while
// the database is away), then
// the outcome stored (kept by the outbox until the database takes it) and observers told (metrics,
// tracing); the caller settles the live run with the returned view.
import type { InvokeRequest, InvokeResult } from '../agents/types.js'
import { executePlan, firstSteps, initialSteps, toStepError } from './engine.js'
import { ZERO_TOTALS, type LiveRun } from './live-run.js'
import type { Plan } from './plan.js'
import type { OutcomeOutbox } from './outcome-outbox.js'
import type { RunStore } from './run-store.js'
import type { Catalog, EngineEvent, FinishedRun, RunOutcome, RunView, StartRequest, StepResult } from './types.js'
import type { Journal } from '../store/journal.js'

interface Cancellable { cancel(): void }

/**
 * Runs `fn` two turns of the event loop from now. A write the steps' start makes waits this long so their
 * usage-ledger reservations (which each provider call waits for, and which the ledger sends one turn after the
 * call begins) go first: on PGlite in memory, whose statements run one at a time on this thread, the write
 * then runs while the calls wait for the provider instead of before them (in a DATA_DIR, PGlite has a thread
 * of its own and the reservations go to the usage journal, but the statement is still built on this one).
 */
export function afterTwoTurns (fn: () => void): Cancellable {
  let immediate = setImmediate(() => { immediate = setImmediate(fn) })
  return { cancel: () => clearImmediate(immediate) }
}

export interface ExecutorDeps {
  invoke(request: InvokeRequest): Promise<InvokeResult>
  catalog: Catalog
  store: RunStore
  outbox: OutcomeOutbox
  stepTimeoutMs: number
  abortGraceMs?: number
  /** Least time between two progress writes of a run. */
  progressIntervalMs: number
  /**
   * PGlite in a DATA_DIR (the outcomes' journal): a step's start is appended to it instead of written at once,
   * and reaches the row with the next progress write or the outcome (replayJournaled stores it after a crash).
   */
  journal?: Journal
  observer?: { started?(strategy: string): void, finished?(run: FinishedRun): void }
  log?: { warn(details: object, message: string): void, error(details: object, message: string): void }
}

/**
 * `stored` settles true once the run's row is in the database (its steps may start before: no write of the run
 * is made until then), false when it could not be stored (the caller aborts the run; nothing is written).
 */
export async function executeRun (
  run: LiveRun,
  plan: Plan,
  request: StartRequest,
  deps: ExecutorDeps,
  stored: Promise<boolean>
): Promise<RunView> {
  const { runId } = run
  const createdAt = new Date().toISOString()
  const steps = initialSteps(plan)
  // The steps that start at once were stored as running with the run row (stepsAtStart). Any later step's
  // start is written at once (steps starting in the same turn share the write), and that step's events are
  // published only once the write has settled, so a step is stored as started before a client can see it.
  // With a journal, the start is appended to it instead (on disk before its events go out) and reaches the row
  // with the next progress write, throttled as finished steps are, or the outcome: a sequential run no longer
  // makes a statement per step (on PGlite each cost about as much CPU as the step's own agent call). Reads of
  // the run meanwhile answer this process's steps (run.steps; service.ts).
  // Finished steps are stored at most once per progressIntervalMs, never after the end: a run shorter than
  // the interval writes only its row and its outcome. Each write carries only the steps changed since the
  // last one. A failed write (database away) keeps them dirty, so they are tried again an interval later;
  // a step's events then wait only for that attempt.
  const storedWithRun = new Set(firstSteps(plan))
  run.steps = steps
  /** Releases of journaled starts not yet in the row; a progress write takes those appended before it. */
  let journaled: Array<() => void> = []
  const releaseAll = (releases: Array<() => void>) => { for (const release of releases) release() }
  const progress = {
    dirty: new Set<number>(),
    timer: null as NodeJS.Timeout | null,
    soon: null as Cancellable | null,
    writing: null as Promise<void> | null,
    /** Settles when the write after the current one (which will take what is dirty now) settles. */
    next: deferred(),
    lastWrite: Date.now(),
    urgent: false,
    ended: false,
    failures: 0
  }
  // The step objects each write stored, by index (not when the row was no longer running: marked interrupted
  // by another replica): a step whose final object is here is not sent again with the outcome. Steps are
  // replaced, never changed in place, so the same object is the same content.
  const written = new Map<number, StepResult>()
  const write = () => {
    progress.timer = null
    progress.soon = null
    const settled = progress.next
    progress.next = deferred()
    if (progress.ended || progress.dirty.size === 0) {
      settled.resolve()
      return
    }
    const changed = [...progress.dirty].sort((a, b) => a - b)
    const batch = changed.map(index => steps[index])
    const covered = journaled
    journaled = []
    progress.dirty.clear()
    progress.urgent = false
    progress.writing = stored
      .then(inserted => {
        if (!inserted) return
        return deps.store.progress(runId, batch).then(updated => {
          if (updated) for (const step of batch) written.set(step.index, step)
        })
      })
      .then(
        () => {
          progress.failures = 0
          releaseAll(covered)
        },
        err => {
          if (progress.failures++ === 0) deps.log?.warn({ err, runId }, 'could not store workflow progress; retrying')
          for (const index of changed) progress.dirty.add(index)
          journaled = [...covered, ...journaled]
        }
      )
      .then(() => {
        progress.writing = null
        progress.lastWrite = Date.now()
        settled.resolve()
        if (progress.dirty.size > 0) saveProgress()
      })
  }
  const saveProgress = (now = false) => {
    if (now) progress.urgent = true
    if (progress.writing || progress.ended || progress.soon) return
    if (progress.urgent) {
      if (progress.timer) clearTimeout(progress.timer)
      progress.timer = null
      progress.soon = afterTwoTurns(write)
    } else if (!progress.timer) {
      progress.timer = setTimeout(write, Math.max(0, progress.lastWrite + deps.progressIntervalMs - Date.now()))
    }
  }
  /** The step's start on disk in the journal, or undefined when there is none or it could not take the entry. */
  const journalStart = (step: StepResult): (() => void) | undefined => {
    if (!deps.journal) return undefined
    try {
      return deps.journal.append({ runId, progress: [step] })
    } catch (err) {
      deps.log?.error({ err, runId }, 'progress journal append failed; storing the step start directly')
    }
  }
  // Events go out in order; those of a step whose start is being written wait for that write.
  const gates = new Map<number, Promise<void>>()
  let publishing: Promise<void> | null = null
  const publish = (event: EngineEvent, gate?: Promise<void>) => {
    if (!gate && !publishing) {
      run.publish(event)
      return
    }
    const queued: Promise<void> = (publishing ?? Promise.resolve())
      .then(() => gate)
      .then(() => {
        run.publish(event)
        if (publishing === queued) publishing = null
      })
    publishing = queued
  }
  const onEvent = (event: EngineEvent) => {
    const index = event.data.index
    if (event.event === 'step-started') {
      steps[index] = { ...steps[index], status: 'running', startedAt: event.data.startedAt }
      if (!storedWithRun.has(index)) {
        progress.dirty.add(index)
        const release = journalStart(steps[index])
        if (release) {
          journaled.push(release)
          saveProgress()
        } else {
          gates.set(index, progress.next.promise)
          saveProgress(true)
        }
      }
    } else if (event.event === 'step-completed' || event.event === 'step-failed') {
      steps[index] = event.data
      progress.dirty.add(index)
      saveProgress()
    }
    publish(event, gates.get(index))
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
  progress.soon?.cancel()
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
  const storedSteps = new Set(outcome.steps.filter(step => written.get(step.index) === step).map(step => step.index))
  if (await stored) await deps.outbox.finish(runId, outcome, view, storedSteps)
  // The outcome (journaled or stored) carries every step the row lacks, the journaled starts among them.
  releaseAll(journaled)
  // A start not written before the end is stored by the outcome: its events wait no longer.
  progress.next.resolve()
  await publishing
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

function deferred (): { promise: Promise<void>, resolve: () => void } {
  let resolve!: () => void
  const promise = new Promise<void>(_resolve => { resolve = _resolve })
  return { promise, resolve }
}

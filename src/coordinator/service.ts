// The coordinator service: checks a workflow, creates its durable run (claiming the Idempotency-Key),
// executes it in the background (run-executor.ts), and lets requests follow a run live, join a run
// another request started, read it, or cancel it — from any replica: a heartbeat of this process's
// runs picks up cancel requests stored by others, and runs whose replica went away are marked
// interrupted (upkeep.ts). Framework-free: dependencies come in.
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { hasPermission, type Caller, type Permission } from '../auth/roles.js'
import {
  CancelledError,
  ConflictError,
  NotFoundError,
  ShuttingDownError,
  UnprocessableError,
  withDetails
} from '../errors.js'
import { refOf, stepsAtStart } from './engine.js'
import { LiveRun, recordOf, refsOf, viewOf } from './live-run.js'
import { createOutcomeOutbox } from './outcome-outbox.js'
import { planWorkflow } from './plan.js'
import { requestHash } from './request-hash.js'
import { afterTwoTurns, executeRun, type ExecutorDeps } from './run-executor.js'
import type { RunRecord, RunStore } from './run-store.js'
import { createUpkeep } from './upkeep.js'
import { readStats } from './stats.js'
import type { InvokeRequest, InvokeResult } from '../agents/types.js'
import type { Catalog, RunHandle, RunView, StartRequest } from './types.js'
import type { Journal } from '../store/journal.js'

export type { RunHandle, RunKind, RunView, StartRequest } from './types.js'
export { viewOf } from './live-run.js'

export interface CoordinatorSettings {
  stepTimeoutMs: number
  /**
   * Heartbeat and cancel-request polling interval; how often a joined remote run is re-read; least time between
   * progress writes.
   */
  pollMs: number
  /** A running run whose replica has not reported for this long is considered interrupted. */
  staleMs: number
  idempotencyTtlSeconds: number
  /** Longest a request waits on a run another replica executes before answering 409. */
  joinTimeoutMs: number
  abortGraceMs?: number
}

export interface CoordinatorDeps {
  /** The agent service: a failed invocation's error carries what it spent as `usage` (the step reports it). */
  agents: { invoke(req: InvokeRequest): Promise<InvokeResult> }
  catalog: Catalog
  store: RunStore
  settings: CoordinatorSettings
  observer?: ExecutorDeps['observer']
  log?: ExecutorDeps['log']
  /**
   * PGlite in a DATA_DIR: outcomes are journaled and answered before their rows are written (outcome-outbox.ts),
   * and steps' starts journaled instead of written at once (run-executor.ts).
   */
  outcomeJournal?: Journal
}

export type Coordinator = ReturnType<typeof createCoordinator>

export function createCoordinator (deps: CoordinatorDeps) {
  const { store, catalog, settings } = deps
  const active = new Map<string, LiveRun>()
  const outbox = createOutcomeOutbox(store, deps.log, undefined, deps.outcomeJournal)
  const executor: ExecutorDeps = {
    invoke: request => deps.agents.invoke(request),
    catalog,
    store,
    outbox,
    stepTimeoutMs: settings.stepTimeoutMs,
    abortGraceMs: settings.abortGraceMs,
    progressIntervalMs: settings.pollMs,
    journal: deps.outcomeJournal,
    observer: deps.observer,
    log: deps.log
  }
  const clientGone = () => new CancelledError('The run was cancelled: its streaming client went away')
  const notFound = (runId: string) => withDetails(new NotFoundError(`No workflow run ${runId}`), { runId })
  const upkeep = createUpkeep({
    store,
    outbox,
    running: () => [...active.keys()],
    cancel: runId => active.get(runId)?.abort(new CancelledError('The run was cancelled'), true),
    pollMs: settings.pollMs,
    staleMs: settings.staleMs,
    log: deps.log
  })
  const reapIfStale = upkeep.reapIfStale

  async function visible (runId: string, caller: Caller, permission: Permission): Promise<RunRecord> {
    const record = await store.get(runId)
    if (!record || (record.callerId !== caller.id && !hasPermission(caller.role, permission))) throw notFound(runId)
    const kept = outbox.view(runId)
    if (kept) return recordOf(kept, record)
    // Journaled progress (PGlite in a DATA_DIR, one process): a running run's row may lack its latest starts.
    const local = deps.outcomeJournal && active.get(runId)
    if (local) return { ...record, steps: [...local.steps] }
    if (await reapIfStale(record)) return (await store.get(runId)) ?? record
    return record
  }

  /** Waits until a run finishes: live when it runs here, else by re-reading it every pollMs. */
  async function finished (runId: string, timeoutMs: number, signal?: AbortSignal): Promise<RunView> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const local = active.get(runId)
      if (local) return local.done
      const kept = outbox.view(runId)
      if (kept) return kept
      const record = await store.get(runId)
      if (!record) throw notFound(runId)
      if (record.status !== 'running') return viewOf(record)
      if (await reapIfStale(record)) continue
      if (Date.now() >= deadline) {
        throw withDetails(
          new ConflictError(
            'The run is still in progress on another instance; read it with GET /api/coordinator/runs/:runId'
          ),
          { runId }
        )
      }
      try {
        await sleep(settings.pollMs, undefined, { signal })
      } catch {
        throw new CancelledError('Stopped waiting for the run: the request went away')
      }
    }
  }

  /** Follows a run without owning it: live here, else by polling the store. */
  async function join (runId: string, signal?: AbortSignal, known?: RunRecord): Promise<RunHandle> {
    const local = active.get(runId)
    if (local) return local.handle(true, clientGone)
    const stored = known ?? await store.get(runId)
    if (!stored) throw notFound(runId)
    const kept = outbox.view(runId)
    const record = kept ? recordOf(kept, stored) : stored
    const done =
      record.status === 'running' ? finished(runId, settings.joinTimeoutMs, signal) : Promise.resolve(viewOf(record))
    done.catch(() => {})
    return {
      runId,
      strategy: record.strategy,
      ...(record.workflowName ? { workflowName: record.workflowName } : {}),
      steps: refsOf(record),
      replayed: true,
      subscribe: null,
      done,
      cancel: () => {}
    }
  }

  return {
    catalog,

    /** Checks the workflow (400), claims the Idempotency-Key (422 on a different body, else joins), starts the run. */
    async start (request: StartRequest): Promise<RunHandle> {
      const plan = planWorkflow(request.spec, catalog)
      const runId = randomUUID()
      const run = new LiveRun(runId, plan.strategy, request.workflowName, plan.steps.map(refOf))
      const newRun = {
        id: runId,
        callerId: request.caller.id,
        strategy: plan.strategy,
        workflowName: request.workflowName,
        input: request.body,
        steps: stepsAtStart(plan, new Date().toISOString())
      }
      // Registered before the claim, so a concurrent request that loses the key finds it here.
      active.set(runId, run)
      const execute = (stored: Promise<boolean>) => {
        executeRun(run, plan, request, executor, stored)
          .then(view => {
            active.delete(runId)
            run.finish(view)
          })
          .catch(err => deps.log?.error({ err, runId }, 'workflow run failed'))
      }
      if (!request.idempotencyKey) {
        // Nothing can make this run another's: its steps start while its row is inserted (their progress and
        // outcome are written once it is in). The caller learns the run only once it is stored; a failed insert
        // cancels the steps and fails the request. The insert is sent two turns after the steps start
        // (afterTwoTurns says why).
        const inserted = new Promise<void>(resolve => afterTwoTurns(resolve)).then(() => store.start(newRun))
        execute(inserted.then(() => true, () => false))
        try {
          await inserted
        } catch (error) {
          run.abort(error instanceof Error ? error : new Error(String(error)))
          throw error
        }
        return run.handle(false, clientGone)
      }
      const hash = requestHash(request.kind, request.body)
      let started
      try {
        started = await store.start(newRun, {
          key: request.idempotencyKey,
          requestHash: hash,
          ttlSeconds: settings.idempotencyTtlSeconds
        })
      } catch (error) {
        active.delete(runId)
        throw error
      }
      if (!started.created) {
        active.delete(runId)
        if (started.requestHash !== hash) {
          throw withDetails(new UnprocessableError('This Idempotency-Key was already used with a different request'), {
            idempotencyKey: request.idempotencyKey
          })
        }
        return join(started.runId, request.signal)
      }
      execute(Promise.resolve(true))
      return run.handle(false, clientGone)
    },

    async get (runId: string, caller: Caller): Promise<RunView> {
      return viewOf(await visible(runId, caller, 'agent:stats'))
    },

    /**
     * A stored run to stream (`Accept: text/event-stream` on GET /runs/:runId): live events while it runs, then
     * `complete`.
     */
    async follow (runId: string, caller: Caller, signal?: AbortSignal): Promise<RunHandle> {
      return join(runId, signal, await visible(runId, caller, 'agent:stats'))
    },

    /** Aborts a running run's steps (here, or via the cancel request its replica polls); answers its state. */
    async cancel (runId: string, caller: Caller): Promise<RunView> {
      const record = await visible(runId, caller, 'agent:manage')
      if (record.status !== 'running') {
        throw withDetails(
          new ConflictError(
            `The run has already ${record.status === 'completed' ? 'completed' : `ended (${record.status})`}`
          ),
          { runId, status: record.status }
        )
      }
      await store.requestCancel(runId)
      const local = active.get(runId)
      if (local) {
        local.abort(new CancelledError('The run was cancelled'), true)
        return local.done
      }
      try {
        return await finished(runId, settings.pollMs * 3 + (settings.abortGraceMs ?? 1000))
      } catch {
        const stored = await store.get(runId)
        if (!stored) throw notFound(runId)
        return viewOf(stored)
      }
    },

    stats: () => readStats(store, settings.staleMs),
    resetStats: (caller: Caller) => store.resetStats(caller.id),
    activeCount: () => active.size,

    /** Shutdown: runs here are cancelled (stored as such) and their outcome written before the database closes. */
    async close (): Promise<void> {
      upkeep.stop()
      const runs = [...active.values()]
      for (const run of runs) run.abort(new ShuttingDownError())
      await Promise.allSettled(runs.map(run => run.done))
      // Outcomes still waiting for the database get a few more tries before it closes.
      const deadline = Date.now() + Math.max(settings.pollMs * 5, 2000)
      while (outbox.size > 0 && Date.now() < deadline) {
        try {
          await outbox.flush()
        } catch {
          await sleep(Math.min(settings.pollMs, 250))
        }
      }
      if (outbox.size > 0) {
        deps.log?.error(
          { runIds: outbox.ids() },
          deps.outcomeJournal
            ? 'workflow outcomes not stored before shutdown: kept in the journal for the next start'
            : 'workflow outcomes not stored before shutdown: the database was unreachable'
        )
      }
    }
  }
}

// The multi-agent coordinator as a plugin: wraps the framework-free service (src/coordinator) with the
// agent service, the run store over app.db, the workflow metrics, tracing (each run is one trace, its
// agent calls the children), and shutdown (runs still going are cancelled and stored as such before
// the database closes). On PGlite in a DATA_DIR, outcomes go through a journal (src/store/journal.ts).
import fp from 'fastify-plugin'
import { join } from 'node:path'
import { createCatalog } from '../coordinator/catalog.js'
import { replayJournaled } from '../coordinator/outcome-outbox.js'
import { createRunStore } from '../coordinator/run-store.js'
import { createCoordinator, type Coordinator } from '../coordinator/service.js'
import { isMemoryDir } from '../store/database.js'
import { openJournal } from '../store/journal.js'

declare module 'fastify' {
  interface FastifyInstance {
    coordinator: Coordinator
  }
}

export default fp(async function coordinator (app) {
  const { config } = app
  const total = app.meters.counter('coordinator_workflows_total', 'Workflow runs finished, by strategy and status', [
    'strategy',
    'status'
  ])
  const duration = app.meters.histogram(
    'coordinator_workflow_duration_seconds',
    'Duration of finished workflow runs',
    ['strategy'],
    [0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300]
  )
  const active = app.meters.gauge('coordinator_workflows_active', 'Workflow runs in progress on this instance')

  const store = createRunStore(app.db)
  // PGlite in a DATA_DIR: finished runs' outcomes are journaled there, their callers answered before the row is
  // written (src/coordinator/outcome-outbox.ts); what a stopped process left in the journal is stored now.
  const onDisk = app.db.kind === 'pglite' && !isMemoryDir(config.DATA_DIR)
  const outcomeJournal = onDisk
    ? await openJournal(join(config.DATA_DIR, 'run-outcomes'), entries => replayJournaled(store, entries, app.log))
    : undefined
  const service = createCoordinator({
    agents: app.agents,
    catalog: createCatalog(app.agents.definitions),
    store,
    settings: {
      stepTimeoutMs: config.COORDINATOR_STEP_TIMEOUT_MS,
      pollMs: config.COORDINATOR_POLL_MS,
      staleMs: config.COORDINATOR_STALE_MS,
      joinTimeoutMs: config.COORDINATOR_JOIN_TIMEOUT_MS,
      idempotencyTtlSeconds: config.IDEMPOTENCY_TTL_SECONDS
    },
    observer: {
      started: () => active.inc(),
      finished ({ view, callerId, input, startTime, endTime }) {
        active.dec()
        total.inc({ strategy: view.strategy, status: view.status })
        duration.observe({ strategy: view.strategy }, (view.durationMs ?? 0) / 1000)
        // The run is the root of its trace: agent calls made with parentTraceId = runId nest under it.
        if (!app.hasDecorator('tracer')) return
        app.tracer.recordRun({
          id: view.runId,
          name: `workflow.${view.workflowName ?? view.strategy}`,
          runType: 'chain',
          operation: view.strategy,
          startTime,
          endTime,
          inputs: { request: input },
          outputs: {
            result: view.result,
            steps: view.steps.map(s => ({ index: s.index, path: `${s.agent}.${s.method}`, status: s.status }))
          },
          status: view.status === 'completed' ? 'success' : view.status === 'cancelled' ? 'cancelled' : 'error',
          ...(view.error ? { error: { code: view.error.code, message: view.error.message } } : {}),
          usage: view.usage,
          callerId,
          metadata: { runId: view.runId, workflowName: view.workflowName, steps: view.steps.length }
        })
      }
    },
    log: app.log,
    outcomeJournal
  })
  app.decorate('coordinator', service)

  // Before the server stops: streaming runs end (with their `complete` event), outcomes are stored.
  app.addHook('preClose', async () => {
    await service.close()
    outcomeJournal?.close()
  })
}, { name: 'coordinator', dependencies: ['config', 'store', 'metrics', 'agents'] })

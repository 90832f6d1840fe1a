// Run state is the truth, across database outages: a workflow whose database goes away mid-run ends
// stored exactly as its client saw it (outcome kept and written once the database is back, never
// marked interrupted by its own replica, also when the outage outlasts COORDINATOR_STALE_MS); running
// steps are stored as running; a crashed replica's run shows its steps' real states; kept outcomes
// are bounded.
import t, { type Test } from 'tap'
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { build, pglite } from '../support.js'
import { as, COORDINATOR_ENV, post } from './support.js'
import { createOfflineProvider } from '../../src/llm/offline.js'
import type { LlmProvider } from '../../src/llm/types.js'
import { createRunStore, type RunStore } from '../../src/coordinator/run-store.js'
import { createOutcomeOutbox } from '../../src/coordinator/outcome-outbox.js'
import type { RunOutcome, RunView, StepResult } from '../../src/coordinator/types.js'
import type { Database, Row } from '../../src/store/database.js'
import { databaseUnavailable } from '../../src/store/unavailable.js'

const TRIP = {
  origin: 'New York',
  destination: 'Lisbon',
  departureDate: '2030-05-01',
  returnDate: '2030-05-05',
  travelers: 2
}
const STALE_MS = 300

/** A database that can be switched off: every call then fails as a refused connection does. */
function switchable (db: Database) {
  const state = { down: false }
  const guard = async () => {
    if (state.down) {
      throw databaseUnavailable(
        Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5433'), { code: 'ECONNREFUSED' })
      )
    }
  }
  const wrapped: Database = {
    kind: db.kind,
    location: db.location,
    async query<T extends Row> (sql: string, params?: unknown[]) { await guard(); return db.query<T>(sql, params) },
    async exec (sql) { await guard(); return db.exec(sql) },
    async write (sql) { await guard(); return db.write(sql) },
    async transaction (fn) { await guard(); return db.transaction(fn) },
    async ping () { await guard(); await db.ping() },
    async close () {}
  }
  return { db: wrapped, state }
}

/** The offline provider, holding every call until `open()`. */
function gatedProvider () {
  const offline = createOfflineProvider()
  let open: () => void = () => {}
  const gate = new Promise<void>(resolve => { open = resolve })
  let waiting = 0
  const provider: LlmProvider = {
    ...offline,
    async generate (request) {
      waiting++
      await gate
      return offline.generate(request)
    }
  }
  return { provider, open, waiting: () => waiting }
}

async function until (what: () => Promise<boolean> | boolean, ms = 15_000) {
  const deadline = Date.now() + ms
  while (!(await what())) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await sleep(20)
  }
}

const brief = (steps: StepResult[]) => steps.map(s => ({ id: s.id, status: s.status, data: s.data, usage: s.usage }))

async function setup (t: Test) {
  const flaky = switchable(await pglite())
  const gated = gatedProvider()
  const app = await build(t, {
    db: flaky.db,
    env: { ...COORDINATOR_ENV, COORDINATOR_STALE_MS: String(STALE_MS) },
    appOptions: { llmProvider: gated.provider }
  })
  const stored = async (runId: string) =>
    (
      await app.db.query<{ status: string; steps: StepResult[]; error: { code: string } | null; usage: unknown }>(
        'SELECT status, steps, error, usage FROM workflow_runs WHERE id = $1',
        [runId]
      )
    )[0]
  return { app, flaky, gated, stored }
}

t.test('the database goes away mid-run and the runs finish meanwhile: stored as the clients saw them', async t => {
  const { app, flaky, gated, stored } = await setup(t)
  await sleep(STALE_MS * 2) // this replica has been connected long enough to sweep
  const replies = [1, 2, 3].map(() =>
    post(app, 'workflow', { workflowName: 'trip-package', input: TRIP }, as('alice', { 'cache-control': 'no-cache' }))
  )
  // Every call waits on the provider and every run row is in (on PGlite a run's row is inserted after its
  // steps' calls started).
  const running = async () =>
    (await app.db.query<{ n: number }>("SELECT count(*)::int AS n FROM workflow_runs WHERE status = 'running'"))[0].n
  await until(async () => gated.waiting() >= 9 && (await running()) >= 3)
  flaky.state.down = true
  await sleep(STALE_MS * 3) // heartbeats fail for longer than COORDINATOR_STALE_MS
  gated.open()
  const seen = (await Promise.all(replies)).map(r => r.json<RunView>())
  t.same(seen.map(v => v.status), ['completed', 'completed', 'completed'], 'the clients got completed runs')
  await sleep(STALE_MS * 2)
  flaky.state.down = false
  for (const view of seen) await until(async () => (await stored(view.runId)).status !== 'running')
  await sleep(STALE_MS * 3) // sweeps after the outage leave them alone
  for (const view of seen) {
    const row = await stored(view.runId)
    t.equal(row.status, 'completed', 'stored completed, not interrupted')
    t.equal(row.error, null)
    t.same(brief(row.steps), brief(view.steps), 'every step stored as the client saw it')
    t.same(row.usage, view.usage)
  }
})

t.test(
  'an outage longer than COORDINATOR_STALE_MS while a run is still going: its own replica does not mark it interrupted',
  async t => {
    const { app, flaky, gated, stored } = await setup(t)
    await sleep(STALE_MS * 2)
    const reply = post(
      app,
      'workflow',
      { workflowName: 'trip-package', input: TRIP },
      as('alice', { 'cache-control': 'no-cache' })
    )
    const latest = () => app.db.query<{ id: string }>('SELECT id FROM workflow_runs ORDER BY created_at DESC LIMIT 1')
    // The row is inserted once the calls started (service.ts), so both are waited for.
    await until(async () => gated.waiting() >= 3 && (await latest()).length > 0)
    const [{ id: runId }] = await latest()
    await until(async () => (await stored(runId)).steps.every(s => s.status === 'running'))
    t.pass('steps that started are stored as running')
    flaky.state.down = true
    await sleep(STALE_MS * 3)
    flaky.state.down = false
    await sleep(STALE_MS * 4) // several ticks and a sweep after the database came back
    t.equal((await stored(runId)).status, 'running', 'still running after the outage')
    gated.open()
    const view = (await reply).json<RunView>()
    t.equal(view.status, 'completed')
    await until(async () => (await stored(runId)).status !== 'running')
    const row = await stored(runId)
    t.equal(row.status, 'completed')
    t.same(brief(row.steps), brief(view.steps))
  }
)

t.test(
  "a crashed replica's run: completed steps keep their data, the running one is interrupted, the rest skipped",
  async t => {
    const db = await pglite()
    const store = createRunStore(db)
    const runId = randomUUID()
    const step = (index: number, status: StepResult['status'], extra: Partial<StepResult> = {}): StepResult => ({
      index,
      role: 'step',
      agent: 'travel',
      method: 'generateItinerary',
      status,
      usage: { inputTokens: 0, outputTokens: 0, costUsd: 0 },
      cached: false,
      durationMs: 0,
      ...extra
    })
    await store.start({
      id: runId,
      callerId: 'alice',
      strategy: 'sequential',
      input: {},
      steps: [step(0, 'pending'), step(1, 'pending'), step(2, 'pending')]
    })
    await store.progress(runId, [
      step(0, 'completed', { data: { days: 2 }, usage: { inputTokens: 10, outputTokens: 20, costUsd: 0.5 } }),
      step(1, 'running', { startedAt: new Date().toISOString() }),
      step(2, 'pending')
    ])
    await db.query("UPDATE workflow_runs SET heartbeat_at = now() - interval '1 hour' WHERE id = $1", [runId])
    t.same(await store.reapStale(1000, undefined, [runId]), [], 'a replica never reaps its own runs')
    t.same(await store.reapStale(1000), [runId])
    const record = (await store.get(runId))!
    t.match(record, {
      status: 'failed',
      error: { code: 'AMK_INTERRUPTED' },
      usage: { inputTokens: 10, outputTokens: 20, costUsd: 0.5 }
    })
    t.same(
      record.steps.map(s => s.status),
      ['completed', 'interrupted', 'skipped']
    )
    t.same(record.steps[0].data, { days: 2 })
    t.match(record.steps[1], { error: { code: 'AMK_INTERRUPTED' }, startedAt: String })
    t.match(record.steps[2], { error: { code: 'AMK_INTERRUPTED', message: /not started/ } })

    const outcome: RunOutcome = {
      status: 'completed',
      steps: [step(0, 'completed')],
      result: { ok: true },
      usage: { inputTokens: 1, outputTokens: 1, costUsd: 0 },
      durationMs: 5
    }
    await store.finish(runId, outcome)
    t.equal(
      (await store.get(runId))!.status,
      'completed',
      'the replica that ran it replaces the interrupted mark with the real outcome'
    )
  }
)

t.test('outcomes kept while the database is away are bounded and written once it is back', async t => {
  const db = await pglite()
  const real = createRunStore(db)
  let down = true
  const store: RunStore = {
    ...real,
    finish: async (runId, outcome) => {
      if (down) throw new Error('connect ECONNREFUSED')
      await real.finish(runId, outcome)
    }
  }
  const outbox = createOutcomeOutbox(store, undefined, 2)
  const ids = [randomUUID(), randomUUID(), randomUUID()]
  for (const id of ids) await real.start({ id, callerId: 'alice', strategy: 'parallel', input: {}, steps: [] })
  const outcome: RunOutcome = {
    status: 'completed',
    steps: [],
    result: null,
    usage: { inputTokens: 0, outputTokens: 0, costUsd: 0 },
    durationMs: 1
  }
  for (const id of ids) await outbox.finish(id, outcome, { runId: id, status: 'completed' } as RunView)
  t.same(outbox.ids(), ids.slice(1), 'the oldest is dropped past the bound')
  await t.rejects(outbox.flush())
  down = false
  await outbox.flush()
  t.equal(outbox.size, 0)
  t.same((await Promise.all(ids.map(id => real.get(id)))).map(r => r!.status), ['running', 'completed', 'completed'])
})

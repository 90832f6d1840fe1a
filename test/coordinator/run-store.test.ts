// The run store on PGlite and PostgreSQL: a run's life (create, progress, outcome), cancel requests and
// the heartbeat that reports them, runs whose replica went away (marked interrupted — also when a
// request joins one through its Idempotency-Key, and by the periodic sweep), expired keys, and the statistics epoch.
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { createRunStore } from '../../src/coordinator/run-store.js'
import { dollarQuoted, inlined } from '../../src/store/sql-literal.js'
import { openDatabase, type Database } from '../../src/store/database.js'
import { migrate } from '../../src/store/migrate.js'
import { build, needs, pglite, postgresDatabase } from '../support.js'
import { as, COORDINATOR_ENV, post } from './support.js'
import type { StepResult } from '../../src/coordinator/types.js'

const step = (status: StepResult['status'], data?: unknown): StepResult => ({
  index: 0,
  role: 'step',
  agent: 'travel',
  method: 'generateItinerary',
  status,
  usage: { inputTokens: 1, outputTokens: 2, costUsd: 0 },
  cached: false,
  durationMs: 0,
  ...(data ? { data } : {})
})

const backends: Array<{ name: string, skip: false | string, open: () => Promise<Database> }> = [
  { name: 'PGlite', skip: false, open: pglite },
  {
    name: 'PostgreSQL',
    skip: needs('postgres'),
    open: async () => {
      const db = await openDatabase({ databaseUrl: await postgresDatabase(), dataDir: '' })
      await migrate(db)
      t.teardown(() => db.close())
      return db
    }
  }
]

for (const backend of backends) {
  t.test(
    `${backend.name}: a run's life, cancel requests, heartbeats, interrupted runs, keys, stats`,
    { skip: backend.skip },
    async t => {
      const db = await backend.open()
      const store = createRunStore(db)
      const id = randomUUID()
      t.same(
        await store.start({
          id,
          callerId: 'alice',
          strategy: 'sequential',
          input: { steps: [] },
          steps: [step('pending')]
        }),
        { created: true }
      )
      let record = (await store.get(id))!
      t.match(record, {
        runId: id,
        callerId: 'alice',
        strategy: 'sequential',
        status: 'running',
        cancelRequested: false,
        result: null,
        error: null
      })
      t.ok(record.heartbeatAgeMs !== null && record.heartbeatAgeMs < 60_000)

      await store.progress(id, [step('completed', { days: 2 })])
      t.same((await store.get(id))!.steps[0].data, { days: 2 })

      t.same(await store.heartbeat([id, randomUUID()]), [], 'no cancel requested yet')
      t.equal(await store.requestCancel(id), true)
      t.same(await store.heartbeat([id]), [id], 'the heartbeat reports the cancel request')
      t.equal((await store.get(id))!.cancelRequested, true)

      await store.finish(id, {
        status: 'cancelled',
        steps: [step('completed', { days: 2 })],
        result: { days: 2 },
        error: { code: 'AMK_CANCELLED', message: 'x' },
        usage: { inputTokens: 1, outputTokens: 2, costUsd: 0 },
        durationMs: 12
      })
      record = (await store.get(id))!
      t.match(record, {
        status: 'cancelled',
        result: { days: 2 },
        error: { code: 'AMK_CANCELLED' },
        durationMs: 12,
        heartbeatAgeMs: null
      })
      t.ok(record.finishedAt)
      t.equal(await store.requestCancel(id), false, 'a finished run cannot be cancelled')
      await store.finish(id, {
        status: 'completed',
        steps: [],
        result: null,
        usage: { inputTokens: 0, outputTokens: 0, costUsd: 0 },
        durationMs: 1
      })
      t.equal((await store.get(id))!.status, 'cancelled', 'an outcome is written once')

      const orphan = randomUUID()
      await store.start({ id: orphan, callerId: 'alice', strategy: 'parallel', input: {}, steps: [] })
      t.same(await store.reapStale(10_000, orphan), [], 'a fresh heartbeat is not stale')
      await db.query("UPDATE workflow_runs SET heartbeat_at = now() - interval '1 hour' WHERE id = $1", [orphan])
      t.same(await store.reapStale(10_000, orphan), [orphan])
      t.match(await store.get(orphan), { status: 'failed', error: { code: 'AMK_INTERRUPTED' } })
      t.same(await store.reapStale(10_000, orphan), [], 'marked once')
      const orphans = [randomUUID(), randomUUID()]
      for (const runId of orphans) { await store.start({ id: runId, callerId: 'bob', strategy: 'parallel', input: {}, steps: [] }) }
      await db.query("UPDATE workflow_runs SET heartbeat_at = now() - interval '1 hour' WHERE id = ANY($1::uuid[])", [
        orphans
      ])
      t.same(
        (await store.reapStale(10_000)).sort(),
        [...orphans].sort(),
        'the sweep marks every stale run, no fresh one'
      )

      const key = { key: 'k-1', requestHash: 'h1', ttlSeconds: 60 }
      const first = randomUUID()
      t.same(await store.start({ id: first, callerId: 'alice', strategy: 'parallel', input: {}, steps: [] }, key), {
        created: true
      })
      t.same(
        await store.start(
          { id: randomUUID(), callerId: 'alice', strategy: 'parallel', input: {}, steps: [] },
          { ...key, requestHash: 'h2' }
        ),
        { created: false, runId: first, requestHash: 'h1' }
      )
      await db.query("UPDATE idempotency_keys SET expires_at = now() - interval '1 second' WHERE key = 'k-1'")
      const second = randomUUID()
      t.same(
        await store.start(
          { id: second, callerId: 'alice', strategy: 'parallel', input: {}, steps: [] },
          { ...key, requestHash: 'h2' }
        ),
        { created: true },
        'an expired key is claimed anew'
      )
      await db.query(
        "INSERT INTO idempotency_keys (caller_id, key, request_hash, run_id, expires_at) VALUES ('bob', 'old', 'h', $1, now() - interval '1 day')",
        [second]
      )
      await store.purgeExpiredKeys()
      t.same(
        (await db.query('SELECT key FROM idempotency_keys ORDER BY key')).map(r => r.key),
        ['k-1']
      )

      const stats = await store.stats(10_000)
      t.same(stats.active, 2, 'the two fresh running runs')
      t.same(stats.byAgent, [{ agent: 'travel', calls: 1, succeeded: 1 }])
      await store.resetStats('admin')
      const after = await store.stats(10_000)
      t.same([after.byStatus, after.byAgent], [[], []])
      t.equal(after.active, 2, 'active runs are not part of the epoch')
    }
  )
}

t.test(
  'a request joining, through its Idempotency-Key, a run whose replica went away gets it marked interrupted',
  async t => {
    const app = await build(t, { env: { ...COORDINATOR_ENV, COORDINATOR_STALE_MS: '1000' } })
    const body = {
      tasks: [{ agent: 'travel', method: 'getVisaRequirements', input: { destination: 'Kenya', nationality: 'Dutch' } }]
    }
    const first = await post(app, 'parallel', body, as('alice', { 'idempotency-key': 'crash-1' }))
    const runId = first.headers['x-run-id'] as string
    // Pretend the replica running it died mid-run.
    await app.db.query(
      "UPDATE workflow_runs SET status = 'running', finished_at = NULL, heartbeat_at = now() - interval '1 hour' WHERE id = $1",
      [runId]
    )
    const joined = await post(app, 'parallel', body, as('alice', { 'idempotency-key': 'crash-1' }))
    t.equal(joined.statusCode, 200)
    t.equal(joined.headers['x-run-id'], runId)
    t.match(joined.json(), { status: 'failed', success: false, error: { code: 'AMK_INTERRUPTED' } })
  }
)

t.test('the periodic sweep marks a crashed replica\'s runs interrupted without anyone reading them', async t => {
  const app = await build(t, { env: { ...COORDINATOR_ENV, COORDINATOR_STALE_MS: '200' } })
  const body = {
    tasks: [{ agent: 'travel', method: 'getVisaRequirements', input: { destination: 'Kenya', nationality: 'Dutch' } }]
  }
  const runId = (await post(app, 'parallel', body, as('alice'))).headers['x-run-id'] as string
  // Pretend the replica running it died mid-run; nobody reads the run afterwards.
  await app.db.query(
    "UPDATE workflow_runs SET status = 'running', finished_at = NULL, heartbeat_at = now() - interval '1 hour' WHERE id = $1",
    [runId]
  )
  const read = async () =>
    (
      await app.db.query<{ status: string; error: { code: string } | null }>(
        'SELECT status, error FROM workflow_runs WHERE id = $1',
        [runId]
      )
    )[0]
  let row = await read()
  const deadline = Date.now() + 10_000 // the sweep runs every COORDINATOR_STALE_MS (200 ms here)
  while (row.status === 'running' && Date.now() < deadline) {
    await new Promise(resolve => setTimeout(resolve, 50))
    row = await read()
  }
  t.match(row, { status: 'failed', error: { code: 'AMK_INTERRUPTED' } })
})

for (const backend of backends) {
  t.test(
    `${backend.name}: progress stores only the steps given; a parallel or sequential result is rebuilt from its steps`,
    { skip: backend.skip },
    async t => {
      const db = await backend.open()
      const store = createRunStore(db)
      const at = (index: number, status: StepResult['status'], extra: Partial<StepResult> = {}): StepResult =>
        ({ ...step(status), index, role: 'task', ...extra })
      const usage = { inputTokens: 0, outputTokens: 0, costUsd: 0 }
      const cases: Array<{ strategy: 'parallel' | 'sequential', steps: StepResult[], result: unknown }> = [
        {
          strategy: 'parallel',
          steps: [
            at(0, 'completed', { id: 'flights', data: { n: 1 } }),
            at(1, 'failed', { data: { n: 2 } }),
            at(2, 'completed', { data: { n: 3 } }),
            at(3, 'completed', { id: 'hotels', data: null })
          ],
          result: { flights: { n: 1 }, 2: { n: 3 }, hotels: null }
        },
        { strategy: 'parallel', steps: [at(0, 'failed'), at(1, 'skipped')], result: {} },
        {
          strategy: 'sequential',
          steps: [at(0, 'completed', { data: { a: 1 } }), at(1, 'completed', { data: [1, 2] }), at(2, 'failed')],
          result: [1, 2]
        },
        { strategy: 'sequential', steps: [at(0, 'failed'), at(1, 'skipped')], result: null }
      ]
      const reaped = randomUUID()
      await store.start({ id: reaped, callerId: 'alice', strategy: 'parallel', input: {}, steps: [at(0, 'pending')] })
      await store.progress(reaped, [at(0, 'completed', { id: 'flights', data: { n: 1 } })])
      await db.query("UPDATE workflow_runs SET heartbeat_at = now() - interval '1 hour' WHERE id = $1", [reaped])
      t.same(await store.reapStale(1000, reaped), [reaped])
      t.equal((await store.get(reaped))!.result, null, 'a run marked interrupted has no result')
      for (const { strategy, steps, result } of cases) {
        const id = randomUUID()
        await store.start({ id, callerId: 'alice', strategy, input: {}, steps: steps.map(s => at(s.index, 'pending')) })
        await store.progress(id, [at(1, 'running', { startedAt: '2030-01-01T00:00:00.000Z' })])
        t.same(
          (await store.get(id))!.steps.map(s => s.status),
          steps.map((s, i) => (i === 1 ? 'running' : 'pending')),
          `${strategy}: progress changed only the step it was given`
        )
        await store.finish(id, { status: 'failed', steps, result, usage, durationMs: 1 }, strategy)
        const record = (await store.get(id))!
        t.same(record.result, result, `${strategy}: the result read is the engine's`)
        const [stored] = await db.query('SELECT result IS NULL AS rebuilt FROM workflow_runs WHERE id = $1', [id])
        t.equal(stored.rebuilt, true, `${strategy}: rebuilt from the steps, not stored twice`)
        t.same(record.steps, JSON.parse(JSON.stringify(steps)), `${strategy}: the steps as given`)
      }
    }
  )
}

for (const backend of backends) {
  t.test(
    `${backend.name}: an outcome sends only the steps no progress write stored in their final state`,
    { skip: backend.skip },
    async t => {
      const opened = await backend.open()
      const sent: string[] = []
      // The same database, every statement text and parameter list kept.
      const db: Database = {
        ...opened,
        query: (sql, params) => { sent.push(sql + JSON.stringify(params ?? [])); return opened.query(sql, params) },
        exec: sql => { sent.push(sql); return opened.exec(sql) },
        write: sql => { sent.push(sql); return opened.write(sql) }
      }
      const store = createRunStore(db)
      const at = (index: number, status: StepResult['status'], data?: unknown): StepResult =>
        ({ ...step(status), index, role: 'task', ...(data ? { data } : {}) })
      const usage = { inputTokens: 3, outputTokens: 6, costUsd: 0 }
      const final = [at(0, 'completed', { marker: 'STORED-ZERO' }), at(1, 'completed', { marker: 'SENT-ONE' }),
        at(2, 'skipped')]
      for (const reap of [false, true]) {
        const id = randomUUID()
        await store.start({ id, callerId: 'alice', strategy: 'parallel', input: {}, steps: [0, 1, 2].map(i => at(i, 'pending')) })
        t.equal(await store.progress(id, [final[0], at(1, 'running')]), true, 'progress answers that it landed')
        if (reap) {
          // Another replica marks it interrupted (step 1 interrupted, step 2 skipped) before the outcome lands.
          await db.query("UPDATE workflow_runs SET heartbeat_at = now() - interval '1 hour' WHERE id = $1", [id])
          t.same(await store.reapStale(1000, id), [id])
          t.equal(await store.progress(id, [at(1, 'completed')]), false, 'no progress lands on an interrupted run')
        }
        sent.length = 0
        await store.finish(id, { status: 'failed', steps: final, result: null, usage, durationMs: 1 }, 'parallel',
          new Set([0]))
        t.equal(sent.length, 1)
        t.notOk(sent[0].includes('STORED-ZERO'), `${reap ? 'reaped' : 'running'}: the stored step is not sent again`)
        t.ok(sent[0].includes('SENT-ONE'), `${reap ? 'reaped' : 'running'}: the others are`)
        const record = (await store.get(id))!
        t.same(record.steps, JSON.parse(JSON.stringify(final)), `${reap ? 'reaped' : 'running'}: stored as the outcome`)
        t.match(record, { status: 'failed', usage, error: null })
      }
    }
  )
}

t.test('large JSON values written into the statement (PGlite) round-trip whatever they hold', async t => {
  t.equal(inlined('SELECT $1, $2::jsonb, $3, $4', ['a', '{"x":1}', 3, null]),
    'SELECT $amk$a$amk$, $amk$' + '{"x":1}$amk$::jsonb, $amk$3$amk$, NULL')
  t.throws(() => inlined('SELECT $1', ['a\0b']), TypeError, 'a NUL is refused, not written into the statement')
  t.equal(dollarQuoted('ends with $amk'), '$amkx$ends with $amk$amkx$')
  for (const backend of backends) {
    if (backend.skip) continue
    const db = await backend.open()
    const store = createRunStore(db)
    const tricky = { text: "it's $amk$ and $amkx$ \\ $1 $2::jsonb '; DROP TABLE workflow_runs; -- \u00e9\u{1F600}", tail: '$amk' }
    const id = randomUUID()
    await store.start({ id, callerId: 'alice', strategy: 'sequential', input: tricky, steps: [step('pending')] })
    await store.progress(id, [step('completed', tricky)])
    t.same((await store.get(id))!.steps[0].data, tricky, `${backend.name}: progress`)
    await store.finish(id, {
      status: 'completed',
      steps: [step('completed', tricky)],
      result: tricky,
      usage: { inputTokens: 0, outputTokens: 0, costUsd: 0 },
      durationMs: 1
    })
    const record = (await store.get(id))!
    t.same([record.steps[0].data, record.result], [tricky, tricky], `${backend.name}: outcome`)
    const [row] = await db.query('SELECT input FROM workflow_runs WHERE id = $1', [id])
    t.same(typeof row.input === 'string' ? JSON.parse(row.input) : row.input, tricky, `${backend.name}: input`)
  }
})

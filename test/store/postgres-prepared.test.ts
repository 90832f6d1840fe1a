// The ledger's writes and a run's row on PostgreSQL are named prepared statements (parsed once per connection),
// statements whose text varies and those in a transaction stay unnamed, and a server
// session that does not hold them as the client believes (a pooler moved the connection, DEALLOCATE, a
// statement of that name made by someone else) turns naming off without losing a write. Real PostgreSQL,
// one pooled connection, so every statement of the test runs in the same server session.
import { randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import { createRunStore } from '../../src/coordinator/run-store.js'
import type { StepResult } from '../../src/coordinator/types.js'
import { openDatabase, type Database } from '../../src/store/database.js'
import { migrate } from '../../src/store/migrate.js'
import { createUsageLedger } from '../../src/store/usage-ledger.js'
import { needs, postgresDatabase, usageRow } from '../support.js'

const skip = needs('postgres')

/** A new database on one pooled connection, the warnings it logs, and a ledger on it. */
async function open (t: Test) {
  const warnings: string[] = []
  const db = await openDatabase({
    databaseUrl: await postgresDatabase(),
    dataDir: 'memory://',
    poolMax: 1,
    log: { warn: (_details, message) => { warnings.push(message) } }
  })
  t.teardown(() => db.close())
  await migrate(db)
  return { db, warnings, ledger: createUsageLedger(db, { instanceId: 'replica' }) }
}

const prepared = async (db: Database) =>
  (await db.query<{ name: string }>('SELECT name FROM pg_prepared_statements ORDER BY name')).map(r => r.name)
const statuses = async (db: Database, callId: string) =>
  (await db.query('SELECT status FROM usage_ledger WHERE call_id = $1', [callId])).map(r => r.status)

t.test('durable writes and batches run as named statements, one per row count', { skip }, async t => {
  const { db, warnings, ledger } = await open(t)
  const callId = randomUUID()
  await ledger.record(usageRow(callId, 'pending'))
  await ledger.record(usageRow(callId, 'success'))
  t.same(await statuses(db, callId), ['success'], 'the settlement replaced the reservation')
  await Promise.all(Array.from({ length: 3 }, () => ledger.record(usageRow(randomUUID()))))
  t.same(await prepared(db), ['amk_usage_upsert_1', 'amk_usage_upsert_3'])
  // A batch larger than the named sizes stays unnamed.
  await Promise.all(Array.from({ length: 40 }, () => ledger.record(usageRow(randomUUID()))))
  t.same(await prepared(db), ['amk_usage_upsert_1', 'amk_usage_upsert_3'])
  t.equal((await db.query('SELECT 1 FROM usage_ledger')).length, 44)
  t.same(warnings, [])
})

t.test('a prepared statement the session lost: the write is made unnamed, and naming stops', { skip }, async t => {
  const { db, warnings, ledger } = await open(t)
  const first = randomUUID()
  await ledger.record(usageRow(first, 'pending'))
  // The client believes amk_usage_upsert_1 is prepared on this connection; the session no longer has it.
  await db.query('DEALLOCATE ALL')
  await ledger.record(usageRow(first, 'success'))
  t.same(await statuses(db, first), ['success'], 'the write that met the lost statement was stored')
  t.same(warnings, ['named prepared statements are off: the server could not run one'])
  const next = randomUUID()
  await ledger.record(usageRow(next, 'pending'))
  await Promise.all(Array.from({ length: 2 }, () => ledger.record(usageRow(randomUUID()))))
  t.same(await statuses(db, next), ['pending'])
  t.same(await prepared(db), [], 'nothing is named any more')
  t.equal(warnings.length, 1, 'said once')
})

t.test('a statement of the same name already in the session (a shared pooled session)', { skip }, async t => {
  const { db, warnings, ledger } = await open(t)
  await db.query('PREPARE amk_usage_upsert_1 AS SELECT 1')
  const callId = randomUUID()
  await ledger.record(usageRow(callId, 'pending'))
  t.same(await statuses(db, callId), ['pending'], 'stored, not the other statement run')
  t.same(warnings, ['named prepared statements are off: the server could not run one'])
})

t.test("a run's insert, outcome and read are named; its progress and a claimed key's transaction are not", { skip },
  async t => {
    const { db, warnings } = await open(t)
    const store = createRunStore(db)
    const step = (index: number, status: StepResult['status']): StepResult => ({
      index,
      role: 'task',
      agent: 'travel',
      method: 'searchFlights',
      status,
      usage: { inputTokens: 1, outputTokens: 2, costUsd: 0 },
      cached: false,
      durationMs: 0
    })
    const usage = { inputTokens: 2, outputTokens: 4, costUsd: 0 }
    for (let i = 0; i < 2; i++) {
      const id = randomUUID()
      await store.start({ id, callerId: 'alice', strategy: 'parallel', input: {}, steps: [step(0, 'running'), step(1, 'running')] })
      t.ok(await store.progress(id, [step(0, 'completed')]))
      await store.finish(id, { status: 'completed', steps: [step(0, 'completed'), step(1, 'completed')], result: null, usage, durationMs: 5 }, 'parallel')
      t.match(await store.get(id), { status: 'completed', steps: [{ status: 'completed' }, { status: 'completed' }] })
    }
    t.same(await prepared(db), ['amk_run_finish', 'amk_run_get', 'amk_run_insert'])
    const keyed = randomUUID()
    t.same(await store.start(
      { id: keyed, callerId: 'alice', strategy: 'parallel', input: {}, steps: [step(0, 'running')] },
      { key: 'k1', requestHash: 'h', ttlSeconds: 60 }
    ), { created: true })
    // Only some steps sent: the text names their indices, so it is not prepared.
    await store.finish(keyed, { status: 'completed', steps: [step(0, 'completed')], result: null, usage, durationMs: 5 }, 'parallel', new Set([1]))
    t.match(await store.get(keyed), { status: 'completed' })
    t.same(await prepared(db), ['amk_run_finish', 'amk_run_get', 'amk_run_insert'])
    t.same(warnings, [])
    // A newer replica changes a column's type: the prepared read's result type no longer holds.
    await db.query('ALTER TABLE workflow_runs ALTER COLUMN duration_ms TYPE bigint')
    t.match(await store.get(keyed), { status: 'completed', durationMs: 5 }, 'read unnamed')
    t.same(warnings, ['named prepared statements are off: the server could not run one'])
  })

t.test('exec answers the rows its last statement changed, as on PGlite', { skip }, async t => {
  const { db } = await open(t)
  await db.exec('CREATE TEMP TABLE counted (n int)')
  t.equal(await db.exec('INSERT INTO counted SELECT generate_series(1, 3)'), 3)
  t.equal(await db.exec('UPDATE counted SET n = n + 1 WHERE n > 1'), 2)
  t.equal(await db.exec('DELETE FROM counted WHERE n > 100; UPDATE counted SET n = n WHERE n = 1'), 1, 'the last one')
  t.equal(await db.exec('UPDATE counted SET n = n WHERE n > 100'), 0)
})

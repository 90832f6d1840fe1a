// The ledger's two ways of writing a row: bound parameters (PostgreSQL) and values inlined by exec()
// (PGlite: a prepared statement per row, a multi-row INSERT per batch). Both store the same row, values
// that could break out of a literal stay data, bad values are the same data errors, and a settlement
// replaces a reservation exactly once.
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { createUsageLedger, isDataError, type UsageRow } from '../../src/store/usage-ledger.js'
import { pglite, STORED_WRITES, usageRow } from '../support.js'

// A completed call with values that exercise the literals (a fraction, a tiny cost); a fresh call id each time.
const row = (fields: Partial<UsageRow> = {}): UsageRow => ({
  ...usageRow(randomUUID()),
  inputTokens: 120,
  outputTokens: 80,
  costUsd: 0.00001234,
  durationMs: 12.6,
  traceId: 't1',
  ...fields
})

const HOSTILE = [
  "o'brien", "'); DROP TABLE usage_ledger; --", 'back\\slash\\', "\\'", 'line\nbreak\ttab', 'ünïcödé 🚀', '$1', "E'x'",
  '$amk$); DROP TABLE usage_ledger; --', 'ends with $amk'
]

const stored = (db: Awaited<ReturnType<typeof pglite>>, traceId: string) => db.query(
  `SELECT caller_id, model, input_tokens, output_tokens, cost_usd, status, duration_ms, estimated, trace_id,
          instance_id, created_at IS NOT NULL AS has_time FROM usage_ledger WHERE trace_id = $1`, [traceId])

t.test('inlined values store exactly what bound parameters store, hostile strings included', async t => {
  const db = await pglite()
  const bound = createUsageLedger(db, { instanceId: 'replica', ...STORED_WRITES })
  const inline = createUsageLedger(db, { instanceId: 'replica', exec: sql => db.exec(sql), ...STORED_WRITES })
  for (const [i, text] of HOSTILE.entries()) {
    const fields = { callerId: text, model: text, inputTokens: i, estimated: i % 2 === 0 }
    await bound.record(row({ ...fields, traceId: `bound-${i}` }))
    await inline.record(row({ ...fields, traceId: `inline-${i}` }))
    const [a] = await stored(db, `bound-${i}`)
    const [b] = await stored(db, `inline-${i}`)
    t.same({ ...b, trace_id: null }, { ...a, trace_id: null }, JSON.stringify(text))
    t.equal(b.caller_id, text)
  }
  t.equal((await db.query('SELECT 1 FROM usage_ledger')).length, 2 * HOSTILE.length, 'nothing else ran')
})

t.test('a batch goes in one inlined INSERT; a settlement replaces its reservation once', async t => {
  const db = await pglite()
  const statements: string[] = []
  const ledger = createUsageLedger(db, { exec: sql => { statements.push(sql); return db.exec(sql) }, ...STORED_WRITES })
  await Promise.all(Array.from({ length: 20 }, (_, i) =>
    ledger.record(row({ callId: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, status: 'pending' }))))
  t.equal(statements.filter(sql => sql.startsWith('INSERT')).length, 1, 'one multi-row INSERT')
  const callId = '00000000-0000-4000-8000-000000000003'
  await ledger.record(row({ callId, status: 'success', outputTokens: 99 }))
  await ledger.record(row({ callId, status: 'error', outputTokens: 1 })) // a settlement is final
  await ledger.record(row({ callId, status: 'pending', outputTokens: 2 })) // a late reservation changes nothing
  const [settled] = await db.query('SELECT status, output_tokens FROM usage_ledger WHERE call_id = $1', [callId])
  t.same(settled, { status: 'success', output_tokens: 99 })
  t.equal(statements.filter(sql => sql.startsWith('PREPARE')).length, 1, 'prepared once')
  t.equal((await db.query("SELECT 1 FROM usage_ledger WHERE status = 'pending'")).length, 19)
})

t.test('bad values are data errors, as with bound parameters; the writer keeps working', async t => {
  const db = await pglite()
  const ledger = createUsageLedger(db, { exec: sql => db.exec(sql), ...STORED_WRITES })
  const nul = await ledger.record(row({ callerId: 'a\0b' })).then(() => null, (error: unknown) => error)
  t.ok(isDataError(nul), 'a NUL is refused like Postgres refuses it')
  const notANumber = await ledger.record(row({ inputTokens: 'x' as unknown as number })).then(() => null, e => e)
  t.ok(isDataError(notANumber), 'a non-number in an integer column')
  await t.rejects(ledger.record(row({ agent: null as unknown as string })), /null value/)
  await ledger.record(row({ traceId: 'fine' }))
  t.equal((await db.query('SELECT trace_id FROM usage_ledger')).length, 1)
})

t.test('a deallocated statement is prepared again; two ledgers on one database share it', async t => {
  const db = await pglite()
  await db.exec('DEALLOCATE ALL')
  const exec = (sql: string) => db.exec(sql)
  const first = createUsageLedger(db, { exec, ...STORED_WRITES })
  const second = createUsageLedger(db, { exec, ...STORED_WRITES })
  await first.record(row({ traceId: 'a' }))
  await second.record(row({ traceId: 'b' }))
  await db.exec('DEALLOCATE ALL')
  await first.record(row({ traceId: 'c' })) // fails over to the buffer once
  await first.flush()
  await first.record(row({ traceId: 'd' }))
  t.same((await db.query('SELECT trace_id FROM usage_ledger ORDER BY trace_id')).map(r => r.trace_id),
    ['a', 'b', 'c', 'd'])
})

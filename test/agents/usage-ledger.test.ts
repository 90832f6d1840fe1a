// The usage ledger's group commit: concurrent rows all land (in order, batched), totals per caller add up,
// also when the calls arrive in separate event-loop turns, and a failing INSERT rejects the callers whose
// rows were in it.
import t from 'tap'
import type { Queryable } from '../../src/store/database.js'
import { createUsageLedger, type UsageRow } from '../../src/store/usage-ledger.js'
import { pglite, STORED_WRITES } from '../support.js'

const row = (i: number, callerId = 'caller-a'): UsageRow => ({
  callerId,
  callerType: 'api-key',
  role: 'user',
  agent: 'travel',
  method: 'searchFlights',
  model: 'gemini-2.5-flash',
  inputTokens: i,
  outputTokens: 2 * i,
  costUsd: i / 1e6,
  status: 'success',
  durationMs: 12.6,
  estimated: false,
  traceId: `t${i}`
})

/** A ledger on a fresh PGlite whose INSERT statements are counted. */
async function countingLedger () {
  const db = await pglite()
  let inserts = 0
  const counting: Queryable = {
    query: (sql, params) => {
      if (sql.startsWith('INSERT')) inserts++
      return db.query(sql, params)
    }
  }
  return { db, ledger: createUsageLedger(counting, STORED_WRITES), inserts: () => inserts }
}

t.test('500 concurrent records: every row stored, in call order, fewer INSERTs than rows', async t => {
  const { db, ledger, inserts } = await countingLedger()
  await Promise.all(Array.from({ length: 500 }, (_, i) => ledger.record(row(i + 1, i % 2 ? 'caller-b' : 'caller-a'))))
  const rows = await db.query<{ trace_id: string; duration_ms: number }>(
    'SELECT trace_id, duration_ms FROM usage_ledger ORDER BY id'
  )
  t.equal(rows.length, 500)
  t.same(rows.map(r => r.trace_id), Array.from({ length: 500 }, (_, i) => `t${i + 1}`))
  t.equal(rows[0].duration_ms, 13, 'durations are whole milliseconds')
  t.ok(inserts() < 500 && inserts() >= 3, `batched into ${inserts()} INSERTs`)
  const totals = await ledger.totals('caller-a', new Date(Date.now() - 60_000))
  const odd = Array.from({ length: 250 }, (_, i) => 2 * i + 1)
  t.same(totals, {
    calls: 250,
    inputTokens: odd.reduce((a, b) => a + b, 0),
    outputTokens: 2 * odd.reduce((a, b) => a + b, 0),
    costUsd: odd.reduce((a, b) => a + b, 0) / 1e6
  })
})

t.test('rows of calls that arrive in separate event-loop turns (as HTTP requests do) share an INSERT', async t => {
  const { db, ledger, inserts } = await countingLedger()
  const turn = () => new Promise(resolve => setImmediate(resolve))
  await Promise.all(Array.from({ length: 50 }, async (_, i) => { await turn(); await ledger.record(row(i + 1)) }))
  t.equal((await db.query('SELECT 1 FROM usage_ledger')).length, 50)
  t.ok(inserts() <= 2, `50 rows in ${inserts()} INSERT(s)`)
})

t.test('a failing INSERT rejects its callers; the ledger keeps working', async t => {
  const db = await pglite()
  const ledger = createUsageLedger(db, STORED_WRITES)
  await t.rejects(ledger.record({ ...row(1), agent: null as unknown as string }), /null value/)
  await ledger.record(row(2))
  t.equal((await db.query('SELECT 1 FROM usage_ledger')).length, 1)
})

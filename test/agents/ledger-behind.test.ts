// USAGE_WRITE_MODE (issue 16): 'durable' (the default) stores a row before record() resolves; 'behind'
// resolves at once and writes the rows of a window in one INSERT (a reservation and its settlement become
// one row), gives reads of this replica its rows first, sends rows the database refuses to the durable
// buffer, and writes what is still queued at close.
import t from 'tap'
import type { Queryable } from '../../src/store/database.js'
import { createMemoryBuffer } from '../../src/store/usage-buffer.js'
import { createUsageLedger, type UsageRow } from '../../src/store/usage-ledger.js'
import { loadConfig } from '../../src/config.js'
import { build, pglite, STORED_WRITES, usageRow } from '../support.js'

const id = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`
const row = (n: number, status: UsageRow['status'] = 'success') => usageRow(id(n), status, `t${n}`)

/** The shared PGlite counting INSERTs; `down` refuses every query like a lost connection. */
async function counted () {
  const db = await pglite()
  const state = { inserts: 0, down: false }
  const queryable: Queryable = {
    async query (sql, params) {
      if (state.down) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })
      if (sql.startsWith('INSERT')) state.inserts++
      return db.query(sql, params)
    }
  }
  const rows = () => db.query<{ call_id: string, status: string, output_tokens: number }>(
    'SELECT call_id, status, output_tokens FROM usage_ledger ORDER BY call_id'
  )
  return { db, queryable, state, rows }
}

t.test('the default mode is durable: the row is in the database when record() resolves', async t => {
  t.equal(loadConfig({ NODE_ENV: 'test' }).USAGE_WRITE_MODE, 'durable')
  const { queryable, rows } = await counted()
  const ledger = createUsageLedger(queryable, STORED_WRITES)
  await ledger.record(row(1, 'pending'))
  t.same((await rows()).map(r => r.status), ['pending'])
  await ledger.record(row(1))
  t.same((await rows()).map(r => r.status), ['success'])
})

t.test('behind: record() resolves before the write; one INSERT per window; a reservation and its ' +
  'settlement become one settled row', async t => {
  const { queryable, state, rows } = await counted()
  const ledger = createUsageLedger(queryable, { mode: 'behind', behindMs: 50 })
  for (let n = 1; n <= 20; n++) {
    await ledger.record(row(n, 'pending'))
    await ledger.record(row(n))
  }
  t.equal(state.inserts, 0, 'nothing written yet: the callers did not wait')
  t.equal((await rows()).length, 0)
  await new Promise(resolve => setTimeout(resolve, 150))
  const stored = await rows()
  t.equal(stored.length, 20)
  t.ok(stored.every(r => r.status === 'success' && r.output_tokens === 20), 'every call settled')
  t.equal(state.inserts, 1, '40 records in one INSERT')
})

t.test('behind: calls that never stop, on a database that takes a while to answer, still make one INSERT ' +
  'per window, not one per write', async t => {
  const { queryable, state, rows } = await counted()
  // PostgreSQL answers asynchronously: rows keep arriving while an INSERT is out. Here every write takes 8 ms
  // and a call is made every 2 ms, for 400 ms, with a 40 ms window.
  const slow: Queryable = {
    query: async (sql, params) => {
      await new Promise(resolve => setTimeout(resolve, 8))
      return queryable.query(sql, params)
    }
  }
  const ledger = createUsageLedger(slow, { mode: 'behind', behindMs: 40 })
  const ends = Date.now() + 400
  let calls = 0
  while (Date.now() < ends) {
    calls++
    await ledger.record(row(calls, 'pending'))
    await ledger.record(row(calls))
    await new Promise(resolve => setTimeout(resolve, 2))
  }
  await ledger.settled()
  t.equal((await rows()).length, calls, 'every call stored')
  // 400 ms of 40 ms windows: about 10 INSERTs, whatever the machine's speed (each INSERT opens the next window).
  // Writing at once what came during the last write made one INSERT per write (32 here before the fix).
  t.ok(state.inserts <= 14, `${state.inserts} INSERTs for ${calls} calls`)
})

t.test('behind: totals() and settled() see this replica\'s rows at once; close() writes the rest', async t => {
  const { queryable, rows } = await counted()
  const ledger = createUsageLedger(queryable, { mode: 'behind', behindMs: 60_000 })
  await ledger.record(row(1))
  await ledger.record(row(2))
  const totals = await ledger.totals('caller-a', new Date(Date.now() - 60_000))
  t.equal(totals.calls, 2, 'totals waited for the queued rows, not for the window')
  await ledger.record(row(3))
  await ledger.settled()
  t.equal((await rows()).length, 3)
  await ledger.record(row(4))
  await ledger.close()
  t.equal((await rows()).length, 4, 'close() wrote the queued row')
})

t.test('behind: rows the database refuses go to the durable buffer and land after recovery', async t => {
  const { queryable, state, rows } = await counted()
  const buffer = createMemoryBuffer()
  const ledger = createUsageLedger(queryable, { mode: 'behind', behindMs: 5, buffer })
  state.down = true
  await ledger.record(row(1, 'pending'))
  await ledger.record(row(1))
  await ledger.settled()
  t.equal(ledger.depth(), 2, 'both records wait in the buffer')
  await ledger.record(row(2)) // the database is suspect: straight to the buffer
  await ledger.settled()
  t.equal(ledger.depth(), 3)
  state.down = false
  t.equal(await ledger.flush(), 3)
  t.same((await rows()).map(r => [r.call_id, r.status]), [[id(1), 'success'], [id(2), 'success']])
})

t.test('behind: a row the database rejects as data is dropped with an error log; the others land', async t => {
  const { queryable, rows } = await counted()
  const errors: string[] = []
  const log = { warn () {}, error (_details: object, message: string) { errors.push(message) } }
  const ledger = createUsageLedger(queryable, { mode: 'behind', behindMs: 5, log })
  await ledger.record({ ...row(1), agent: null as unknown as string })
  await ledger.record(row(2))
  await ledger.settled()
  t.same((await rows()).map(r => r.call_id), [id(2)])
  t.match(errors, [/refuses/])
  t.equal(ledger.depth(), 0, 'nothing buffered for a row that can never be written')
})

t.test('USAGE_WRITE_MODE=behind in the app: an invoke answers before its row is written, and the usage ' +
  'endpoints still count it', async t => {
  const key = 'amk_behind_test_user_key_000001'
  const app = await build(t, { env: { VALID_API_KEYS: `${key}:user`, USAGE_WRITE_MODE: 'behind', USAGE_WRITE_BEHIND_MS: '1000' } })
  const headers = { 'x-api-key': key, 'cache-control': 'no-cache' }
  const input = { from: 'Cairo', to: 'Paris', date: '2030-05-01', passengers: 2 }
  const invoked = await app.inject({ method: 'POST', url: '/api/agents/travel/searchFlights', headers, payload: input })
  t.equal(invoked.statusCode, 200)
  const stored = await app.db.query('SELECT status FROM usage_ledger')
  t.equal(stored.length, 0, 'the row waits for its window')
  const me = await app.inject({ url: '/api/usage/me', headers })
  t.equal(me.statusCode, 200)
  t.equal(me.json().totals.calls, 1, 'the report waited for this replica\'s queued rows')
  t.same((await app.db.query('SELECT status FROM usage_ledger')).map(r => r.status), ['success'])
})

t.test('behind: rows behind a database that does not answer go to the buffer, then land once', async t => {
  const db = await pglite()
  const parked: Array<() => void> = []
  let hang = true
  const hanging: Queryable = {
    async query (sql, params) {
      if (hang) await new Promise<void>(resolve => parked.push(resolve))
      return db.query(sql, params)
    }
  }
  const ledger = createUsageLedger(hanging, { mode: 'behind', behindMs: 5, writeTimeoutMs: 50 })
  await ledger.record(row(1))
  await new Promise(resolve => setTimeout(resolve, 20)) // row 1's INSERT is now stuck
  await ledger.record(row(2)) // queued behind it
  await new Promise(resolve => setTimeout(resolve, 120))
  t.equal(ledger.depth(), 2, 'the stuck batch and the row behind it are in the buffer')
  await ledger.record(row(3))
  t.equal(ledger.depth(), 3, 'while the database is suspect, new rows go straight to the buffer')
  hang = false
  for (const resume of parked.splice(0)) resume()
  await ledger.settled()
  await ledger.flush()
  const rows = await db.query<{ call_id: string }>('SELECT call_id FROM usage_ledger ORDER BY call_id')
  t.same(rows.map(r => r.call_id), [id(1), id(2), id(3)], 'each call once')
})

// Issue 12, the usage ledger under faults: a write the database refuses or does not answer in time goes
// to the durable buffer (an append-only file, or a Redis list) and is written exactly once after recovery,
// also by the next process; the caller never waits much longer than the write timeout; a pending row of a
// replica that stopped heartbeating is settled 'interrupted' by the sweep, and a late real settlement wins.
import t from 'tap'
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import type { Queryable } from '../../src/store/database.js'
import { createFileBuffer, createMemoryBuffer, createRedisBuffer } from '../../src/store/usage-buffer.js'
import { createUsageLedger } from '../../src/store/usage-ledger.js'
import { needs, pglite, REDIS_URL, redisPrefix, STORED_WRITES, usageRow } from '../support.js'

const id = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`

/**
 * The shared PGlite behind a switch: 'down' rejects every query like a refused connection, 'hang'
 * never answers (until 'up').
 */
async function faultyDb () {
  const db = await pglite()
  await db.exec('DELETE FROM usage_instances')
  let mode: 'up' | 'down' | 'hang' = 'up'
  const parked: Array<() => void> = []
  const faulty: Queryable = {
    async query (sql, params) {
      if (mode === 'down') { throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }) }
      if (mode === 'hang') await new Promise<void>(resolve => parked.push(resolve))
      return db.query(sql, params)
    }
  }
  const set = (next: typeof mode) => { mode = next; if (next === 'up') for (const resume of parked.splice(0)) resume() }
  const rows = () =>
    db.query<{ call_id: string; status: string; output_tokens: number }>(
      'SELECT call_id, status, output_tokens FROM usage_ledger ORDER BY id'
    )
  return { db, faulty, set, rows }
}

t.test(
  'file buffer: refused writes are buffered on disk, written once after recovery, also by the next process',
  async t => {
    const { faulty, set, rows } = await faultyDb()
    const dir = mkdtempSync(join(tmpdir(), 'amk-usage-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const ledger = createUsageLedger(faulty, { buffer: await createFileBuffer(dir), writeTimeoutMs: 100 })
    set('down')
    await ledger.record(usageRow(id(1), 'pending'))
    await ledger.record(usageRow(id(1)))
    await ledger.record(usageRow(id(2)))
    t.equal(ledger.depth(), 3, 'three writes wait in the buffer')
    t.equal(
      readFileSync(join(dir, 'pending.jsonl'), 'utf8').trim().split('\n').length,
      3,
      'one JSON line each, on disk'
    )
    await t.rejects(ledger.flush(), /ECONNREFUSED/, 'a replay while the database is down keeps the entries')
    t.equal(ledger.depth(), 3)

    set('up')
    // A new process on the same directory (the first one died) replays the file.
    const next = createUsageLedger(faulty, { buffer: await createFileBuffer(dir) })
    t.equal(next.depth(), 3, 'the next process counts the entries it finds')
    t.equal(await next.flush(), 3)
    t.same(
      (await rows()).map(r => [r.call_id, r.status, r.output_tokens]),
      [
        [id(1), 'success', 20],
        [id(2), 'success', 20]
      ],
      'settled once each'
    )
    t.same(readdirSync(dir), [], 'the buffer files are gone')
    // Replaying the same entries again (the first process flushing its copy) changes nothing.
    t.equal(await ledger.flush(), 0, 'the first process finds nothing left')
    const again = createUsageLedger(faulty, { buffer: createMemoryBuffer(), ...STORED_WRITES })
    await again.record(usageRow(id(1), 'pending'))
    await again.record(usageRow(id(2)))
    t.equal((await rows()).length, 2, 'replayed rows are idempotent: no double count')
    t.same(
      (await rows()).map(r => r.status),
      ['success', 'success'],
      'a late reservation never reopens a settled call'
    )
  }
)

t.test(
  'a hanging database: the caller waits about the write timeout, then the row is buffered and written once',
  async t => {
    const { faulty, set, rows } = await faultyDb()
    const ledger = createUsageLedger(faulty, { buffer: createMemoryBuffer(), writeTimeoutMs: 150 })
    set('hang')
    const waits: number[] = []
    for (let i = 1; i <= 5; i++) {
      const started = performance.now()
      await ledger.record(usageRow(id(i)))
      waits.push(performance.now() - started)
    }
    t.ok(waits[0] >= 140, `the first write waited for the timeout (${Math.round(waits[0])} ms)`)
    t.ok(Math.max(...waits) < 3000, `no write waited long (${waits.map(Math.round).join(', ')} ms, timeout 150 ms)`)
    t.equal(ledger.depth(), 5, 'every row is in the buffer')
    set('up')
    await ledger.flush()
    await new Promise(resolve => setTimeout(resolve, 50)) // the parked INSERT finishes too: still once
    t.same(
      (await rows()).map(r => r.call_id),
      [1, 2, 3, 4, 5].map(id),
      'each row once'
    )
    t.equal(ledger.depth(), 0)
  }
)

t.test(
  'Redis buffer: refused writes go to a Redis list and are written once after recovery',
  { skip: needs('redis') },
  async t => {
    const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 })
    await redis.connect()
    t.teardown(() => redis.quit())
    const key = `${redisPrefix()}usage-buffer`
    t.teardown(() => redis.del(key))
    const { faulty, set, rows } = await faultyDb()
    const buffer = () =>
      createRedisBuffer({ redis, key, fallback: createMemoryBuffer(), timeoutMs: 1000, token: String(Math.random()) })
    const ledger = createUsageLedger(faulty, { buffer: buffer(), writeTimeoutMs: 100 })
    set('down')
    await ledger.record(usageRow(id(7), 'pending'))
    await ledger.record(usageRow(id(7)))
    t.equal(await redis.llen(key), 2, 'both writes are in the Redis list')
    t.equal(ledger.depth(), 2, 'depth reports them')
    set('up')
    const other = createUsageLedger(faulty, { buffer: buffer() }) // another replica drains the shared list
    await other.flush()
    await ledger.flush()
    t.equal(await redis.llen(key), 0)
    t.same(
      (await rows()).map(r => [r.call_id, r.status]),
      [[id(7), 'success']],
      'written once'
    )
  }
)

t.test(
  'the sweep settles pending rows of a replica that stopped heartbeating; a late settlement still wins',
  async t => {
    const { db, faulty, rows } = await faultyDb()
    const dead = createUsageLedger(faulty, { instanceId: 'replica-dead', ...STORED_WRITES })
    const alive = createUsageLedger(faulty, { instanceId: 'replica-alive', staleMs: 200, ...STORED_WRITES })
    const sweeper = createUsageLedger(faulty, { instanceId: 'replica-sweeper', staleMs: 200, ...STORED_WRITES })
    await dead.heartbeat()
    await dead.record(usageRow(id(1), 'pending'))
    await dead.record(usageRow(id(2), 'pending'))
    await alive.record(usageRow(id(3), 'pending'))
    await db.query("UPDATE usage_ledger SET created_at = now() - interval '1 minute'")
    await db.query(
      "UPDATE usage_instances SET heartbeat_at = now() - interval '1 minute' WHERE instance_id = 'replica-dead'"
    )
    await alive.heartbeat()
    t.same((await sweeper.sweep()).sort(), [id(1), id(2)], "only the dead replica's calls")
    t.same(
      (await rows()).map(r => r.status),
      ['interrupted', 'interrupted', 'pending']
    )
    // The dead replica's buffered settlement of call 2 arrives later: it replaces 'interrupted'.
    await dead.record(usageRow(id(2)))
    t.same(
      (await rows()).map(r => r.status),
      ['interrupted', 'success', 'pending']
    )
    t.same(await sweeper.sweep(), [], 'a sweep settles a call once')
  }
)

t.test('close() flushes the buffer and settles its own unfinished calls interrupted', async t => {
  const { faulty, set, rows } = await faultyDb()
  const ledger = createUsageLedger(faulty, { buffer: createMemoryBuffer(), writeTimeoutMs: 100 })
  await ledger.record(usageRow(id(1), 'pending'))
  set('down')
  await ledger.record(usageRow(id(2), 'pending'))
  await ledger.record(usageRow(id(3)))
  set('up')
  await ledger.close()
  t.same(
    (await rows()).map(r => [r.call_id, r.status]),
    [
      [id(1), 'interrupted'],
      [id(2), 'interrupted'],
      [id(3), 'success']
    ]
  )
  t.equal(ledger.depth(), 0)
})

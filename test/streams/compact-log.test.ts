// The compact event log (issue 16): events are kept as their name and data JSON (a token as its data object,
// sharing its chunk), written as the native frames encodeEvent makes and read back exactly (for other wires
// too), an ended stream is kept for STREAM_ENDED_REPLAY_TTL only, and the Redis log's local tier lets events go
// once they are in Redis and every local reader has passed them — while a resume from an older position on the
// same instance still gets every event, from Redis.
import t from 'tap'
import { Redis } from 'ioredis'
import type { StreamMeta } from '../../src/streams/event-log.js'
import { MemoryEventLog } from '../../src/streams/memory-event-log.js'
import { RedisEventLog } from '../../src/streams/redis-event-log.js'
import { encodeEvent, heldData, heldEvent, nativeFrame, type LoggedEvent } from '../../src/streams/events.js'
import { needs, REDIS_URL, redisPrefix } from '../support.js'

const meta = (streamId: string): StreamMeta => ({
  streamId,
  ownerId: 'u1',
  agent: 'content',
  method: 'generateBlogPost',
  createdAt: Date.now(),
  onDisconnect: 'cancel',
  instanceId: 'test'
})
const token = (seq: number, chunk = `t${seq}`): LoggedEvent => ({ seq, event: 'token', data: { chunk, index: seq } })
const complete = (seq: number): LoggedEvent => ({
  seq,
  event: 'complete',
  data: { durationMs: 1, usage: { inputTokens: 1, outputTokens: 2, costUsd: 0, model: 'offline' } }
})

t.test('held events: name and data only (a token its data object), written as the native frames and read back as logged', async t => {
  const log = new MemoryEventLog({ ttlMs: 60_000, maxEvents: 100 })
  t.teardown(() => log.close())
  const events: LoggedEvent[] = [
    token(1, 'héllo "wörld"\n€ 😀'),
    { seq: 2, event: 'error', data: { code: 'X', message: 'm', recoverable: false } },
    complete(3)
  ]
  await log.create(meta('f1'))
  for (const event of events) {
    const held = log.appendNow('f1', event)
    if (event.event === 'token') {
      // The token's own data object: its chunk is the string the provider call holds, not a copy in JSON.
      t.equal(held, event.data, 'held: the token data object itself')
      t.not(heldEvent(held, event.seq).data, event.data, 'read back as a copy: a reader cannot change the log')
    } else {
      t.equal(held, `${event.event}\n${JSON.stringify(event.data)}`, 'held: the name and the data JSON, no id')
    }
    t.equal(heldData(held), JSON.stringify(event.data))
    t.equal(nativeFrame('st_a-b', event.seq, held), encodeEvent('st_a-b', event), 'written as encodeEvent writes it')
    t.same(heldEvent(held, event.seq), event, 'read back as logged')
  }
  t.match(nativeFrame('f1', 2, log.framesAfter('f1', 1)!.frames[1]), /^id: f1-2\nevent: failure\n/, 'wire names')
  t.same(await log.read('f1', 0), events, 'decoded back to the logged events')
  t.same(await log.read('f1', 1), events.slice(1), 'after a position: seqs from positions')
  t.same(await log.last('f1'), events[2])
  t.equal(log.endSeqNow('f1'), 2, 'the first terminal event (an error) ends the stream')
})

t.test('an ended stream is kept for endedTtlMs, a running one for ttlMs', async t => {
  let now = 1_000
  const log = new MemoryEventLog({ ttlMs: 10_000, endedTtlMs: 2_000, maxEvents: 100, now: () => now })
  t.teardown(() => log.close())
  await log.create(meta('e1'))
  await log.create(meta('e2'))
  await log.append('e1', token(1))
  await log.append('e2', token(1))
  await log.append('e2', complete(2))
  now += 3_000
  t.ok(await log.meta('e1'), 'running stream still held')
  t.equal(await log.meta('e2'), null, 'ended stream dropped after the shorter TTL')
  now += 8_000
  t.equal(await log.meta('e1'), null, 'running stream dropped after the TTL since its last event')
})

t.test('local readers hold back released events; the newest always stays', async t => {
  const log = new MemoryEventLog({ ttlMs: 60_000, maxEvents: 100 })
  t.teardown(() => log.close())
  await log.create(meta('r1'))
  for (let seq = 1; seq <= 5; seq++) await log.append('r1', token(seq))
  const reader = log.attach('r1', 2, () => {})!
  log.release('r1', 5)
  t.equal(log.firstSeqNow('r1'), 3, 'events the reader has not passed stay')
  log.advance('r1', reader, 5)
  t.equal(log.firstSeqNow('r1'), 5, 'passed: released, the newest kept')
  t.equal(log.lastNow('r1')?.seq, 5)
  await log.append('r1', token(6))
  log.detach('r1', reader)
  t.equal(log.firstSeqNow('r1'), 6, 'the reader left: what was written elsewhere goes')
  log.release('r1', 6)
  t.same((await log.read('r1', 0)).map(e => e.seq), [6])
})

t.test('redis log: the local tier lets written events go; resumes still get them', { skip: needs('redis') }, async t => {
  const client = new Redis(REDIS_URL, { commandTimeout: 500, maxRetriesPerRequest: 1 })
  const prefix = redisPrefix()
  const log = new RedisEventLog({
    redis: client,
    keyPrefix: prefix,
    ttlMs: 10_000,
    endedTtlMs: 3_000,
    maxEvents: 1000,
    instanceId: 'test',
    leaseMs: 600
  })
  t.teardown(async () => {
    await log.close()
    client.disconnect()
  })
  await log.create(meta('x1'))
  const local = log.localFor('x1', 0)!
  t.ok(local, 'a fresh stream is read locally')
  const reader = local.attach('x1', 0, () => {})!
  for (let seq = 1; seq <= 4; seq++) await log.append('x1', token(seq))
  await log.drain()
  t.equal(local.firstSeqNow('x1'), 1, 'a local reader at 0 holds every event')
  const ttls = () => Promise.all(['events', 'meta'].map(part => client.pttl(`${prefix}stream:{x1}:${part}`)))
  for (const ttl of await ttls()) t.ok(ttl > 3_000 && ttl <= 10_000, `running: keys expire after the replay TTL (${ttl})`)
  local.advance('x1', reader, 3)
  t.equal(local.firstSeqNow('x1'), 4, 'written and passed: only the newest stays here')
  local.detach('x1', reader)
  t.equal(log.localFor('x1', 0), null, 'a resume from 0 is not served from the local tier')
  t.ok(log.localFor('x1', 3), 'a resume from the newest is')
  t.same((await log.read('x1', 0)).map(e => e.seq), [1, 2, 3, 4], 'read from Redis')
  t.equal(await log.firstSeq('x1'), 1)
  const followed: number[] = []
  const following = (async () => {
    for await (const event of log.follow('x1', 1, new AbortController().signal)) followed.push(event.seq)
  })()
  await log.append('x1', complete(5))
  await following
  await log.drain()
  for (const ttl of await ttls()) t.ok(ttl > 0 && ttl <= 3_000, `ended: keys expire after the ended TTL (${ttl})`)
  t.same(followed, [2, 3, 4, 5], 'a follow from an old position replays from Redis and ends at the terminal event')
  t.equal((await log.last('x1'))?.event, 'complete')
})

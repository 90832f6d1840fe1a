// The event log without Fastify: the memory log (ordering, trimming, expiry, follow until terminal) and
// the Redis Streams log against the real Redis (replay with XRANGE, live follow with XREAD BLOCK from a
// log instance that did not write the stream, as another replica would, key expiry, and the end of a
// stream whose instance stopped renewing its lease).
import t from 'tap'
import { Redis } from 'ioredis'
import { StreamGapError, type EventLog, type StreamMeta } from '../../src/streams/event-log.js'
import { MemoryEventLog } from '../../src/streams/memory-event-log.js'
import { RedisEventLog } from '../../src/streams/redis-event-log.js'
import type { LoggedEvent } from '../../src/streams/events.js'
import { needs, REDIS_URL, redisPrefix } from '../support.js'

const CREATED = Date.now()
const meta = (streamId: string): StreamMeta => ({
  streamId,
  ownerId: 'u1',
  agent: 'content',
  method: 'generateBlogPost',
  createdAt: CREATED,
  onDisconnect: 'cancel',
  instanceId: 'test'
})
const token = (seq: number): LoggedEvent => ({ seq, event: 'token', data: { chunk: `t${seq}`, index: seq } })
const complete = (seq: number): LoggedEvent => ({
  seq,
  event: 'complete',
  data: { durationMs: 1, usage: { inputTokens: 1, outputTokens: 2, costUsd: 0 } }
})

async function collect (iterable: AsyncIterable<LoggedEvent>): Promise<number[]> {
  const seqs: number[] = []
  for await (const event of iterable) seqs.push(event.seq)
  return seqs
}

t.test('memory log: read after a position, follow live until the terminal event', async t => {
  const log = new MemoryEventLog({ ttlMs: 60_000, maxEvents: 1000 })
  t.teardown(() => log.close())
  await log.create(meta('s1'))
  for (let seq = 1; seq <= 3; seq++) await log.append('s1', token(seq))
  t.same((await log.read('s1', 1)).map(e => e.seq), [2, 3])
  await t.rejects(log.append('s1', token(3)), /not after/, 'seq must increase')
  await t.rejects(log.append('s1', token(5)), /skips from 3/, 'and be the next one: a seq is a position in the log')
  t.same((await log.read('s1', 0)).map(e => e.seq), [1, 2, 3], 'a refused event is not held')

  const following = collect(log.follow('s1', 0, new AbortController().signal))
  setImmediate(async () => {
    await log.append('s1', token(4))
    await log.append('s1', complete(5))
    await log.append('s1', token(6)) // after the terminal event: never delivered
  })
  t.same(await following, [1, 2, 3, 4, 5])
  t.equal((await log.last('s1'))?.event, 'token')
  t.same(await log.meta('s1'), meta('s1'), 'meta kept')
})

t.test('memory log: trimming creates a gap, expiry drops the stream, abort ends a follower', async t => {
  let now = 1_000
  const log = new MemoryEventLog({ ttlMs: 5_000, maxEvents: 100, now: () => now })
  t.teardown(() => log.close())
  await log.create(meta('s2'))
  for (let seq = 1; seq <= 300; seq++) await log.append('s2', token(seq))
  const first = await log.firstSeq('s2')
  t.ok(first > 1 && first <= 201, `older events trimmed (first held: ${first})`)
  t.ok((await log.read('s2', 0)).length <= 200, 'bounded')

  const controller = new AbortController()
  const follower = collect(log.follow('s2', 300, controller.signal))
  controller.abort()
  t.same(await follower, [], 'abort ends the follow')

  await t.rejects(
    collect(log.follow('s2', 5, new AbortController().signal)),
    StreamGapError,
    'a reader behind the trimmed part is told, not fed a hole'
  )
  await log.append('s2', complete(301))
  t.same(
    await collect(log.follow('s2', 301, new AbortController().signal)),
    [],
    'a follow from the end returns at once'
  )

  now += 6_000
  t.equal(await log.meta('s2'), null, 'expired after the TTL since the last event')
  t.same(await log.read('s2', 0), [])
  t.equal(log.sweep(), 0, 'already dropped on access')
})

t.test('memory log: every local reader is woken, also when one of them detaches while woken', async t => {
  const log = new MemoryEventLog({ ttlMs: 5_000, maxEvents: 100 })
  t.teardown(() => log.close())
  await log.create(meta('s3'))
  const woken: string[] = []
  const gone = new AbortController()
  // waitForEvent's reader detaches itself inside its wake-up; the readers after it must still be woken.
  const waits = [log.waitForEvent('s3', gone.signal), log.waitForEvent('s3', gone.signal)]
  const unsubscribe = log.subscribe('s3', () => woken.push('subscriber'))
  const followed = collect(log.follow('s3', 0, gone.signal))
  await log.append('s3', token(1))
  await Promise.all(waits)
  t.same(woken, ['subscriber'], 'a reader attached after the self-detaching ones was woken')
  await log.append('s3', complete(2))
  t.same(await followed, [1, 2], 'the follower read every event to the end')
  unsubscribe()
  unsubscribe()
  await log.append('s3', token(3)).catch(() => {})
  t.same(woken, ['subscriber', 'subscriber'], 'detached once; a second unsubscribe changes nothing')
})

t.test(
  'redis log: another replica replays, follows live with XREAD BLOCK, and keys expire',
  { skip: needs('redis') },
  async t => {
    const prefix = redisPrefix()
    const writerClient = new Redis(REDIS_URL, { commandTimeout: 500, maxRetriesPerRequest: 1 })
    const readerClient = new Redis(REDIS_URL, { commandTimeout: 500, maxRetriesPerRequest: 1 })
    const errors: Error[] = []
    const options = {
      keyPrefix: prefix,
      ttlMs: 2_000,
      maxEvents: 1000,
      blockMs: 200,
      onError: (e: Error) => errors.push(e)
    }
    // The writer holds the lease of the instance named in the streams' meta; the reader is another replica.
    const writer: EventLog = new RedisEventLog({ ...options, redis: writerClient, instanceId: 'test', leaseMs: 600 })
    const reader: EventLog = new RedisEventLog({ ...options, redis: readerClient, instanceId: 'other', leaseMs: 600 })
    t.teardown(async () => {
      await writer.close()
      await reader.close()
      writerClient.disconnect()
      readerClient.disconnect()
    })

    await writer.create(meta('r1'))
    for (let seq = 1; seq <= 3; seq++) await writer.append('r1', token(seq))
    t.same(await reader.meta('r1'), meta('r1'), 'meta visible on the other instance')
    t.same(
      (await reader.read('r1', 1)).map(e => e.seq),
      [2, 3],
      'XRANGE after the position'
    )
    t.equal(await reader.firstSeq('r1'), 1)

    const following = collect(reader.follow('r1', 2, new AbortController().signal))
    // the follower blocked in XREAD, timed out and re-checked (the writer's lease holds)
    await new Promise(resolve => setTimeout(resolve, 900))
    await writer.append('r1', token(4))
    await writer.append('r1', complete(5))
    t.same(await following, [3, 4, 5], 'replay, then live events, ending at the terminal event')
    t.equal((await reader.last('r1'))?.event, 'complete')

    const controller = new AbortController()
    const aborted = collect(reader.follow('r1', 5, controller.signal))
    setTimeout(() => controller.abort(), 100)
    t.same(await aborted, [], 'abort disconnects a blocked follower')

    const ttl = await readerClient.pttl(`${prefix}stream:{r1}:events`)
    t.ok(ttl > 0 && ttl <= 2_000, `events expire with the replay TTL (${ttl} ms)`)
    t.same(errors, [])
  }
)

t.test(
  'redis log: a follower ends the stream of an instance whose lease lapsed (a crashed replica), once',
  { skip: needs('redis') },
  async t => {
    const prefix = redisPrefix()
    const clients = [0, 1, 2].map(() => new Redis(REDIS_URL, { commandTimeout: 500, maxRetriesPerRequest: 1 }))
    const options = { keyPrefix: prefix, ttlMs: 10_000, maxEvents: 1000, blockMs: 100, leaseMs: 300 }
    const writer = new RedisEventLog({ ...options, redis: clients[0], instanceId: 'test' })
    const readers = [1, 2].map(i => new RedisEventLog({ ...options, redis: clients[i], instanceId: `reader-${i}` }))
    t.teardown(async () => {
      for (const log of [...readers, writer]) await log.close()
      for (const client of clients) client.disconnect()
    })
    await writer.create(meta('c1'))
    for (let seq = 1; seq <= 3; seq++) await writer.append('c1', token(seq))

    const follows = readers.map(reader => {
      const events: LoggedEvent[] = []
      const done = (async () => {
        for await (const event of reader.follow('c1', 1, new AbortController().signal)) events.push(event)
      })()
      return { events, done }
    })
    await new Promise(resolve => setTimeout(resolve, 700))
    t.same(
      follows.map(f => f.events.map(e => e.seq)),
      [
        [2, 3],
        [2, 3]
      ],
      'a live instance (lease renewed) keeps its quiet stream open'
    )

    clients[0].disconnect() // the writer's process is gone: no more renewals, no terminal event
    await Promise.all(follows.map(f => f.done))
    for (const { events } of follows) {
      t.same(
        events.map(e => e.seq),
        [2, 3, 4],
        'the followers end at one terminal event'
      )
      t.match(events.at(-1), { event: 'error', data: { code: 'GENERATION_INTERRUPTED', recoverable: false } })
    }
    t.same(
      (await readers[0].read('c1', 0)).map(e => e.seq),
      [1, 2, 3, 4],
      'logged once, so a later resume ends there too'
    )
  }
)

// Each Redis user behind the one circuit breaker, against a private redis-server frozen with SIGSTOP:
// cache writes never wait; the stream event log keeps appending at memory speed and writes its backlog,
// in order, once the breaker closes; tickets and remote cancels are refused at once with 503; stream
// slots are granted at once (the process cap applies) and count in Redis again after the thaw; the usage
// buffer takes rows into its fallback at once and its drain skips the frozen Redis list, which is replayed
// after the thaw. Nothing waits longer than one command timeout.
import t from 'tap'
import { Redis } from 'ioredis'
import { createRedis } from '../../src/plugins/redis.js'
import { attachBreaker, RedisBreaker } from '../../src/limits/redis-failover.js'
import { createRedisCache } from '../../src/cache/redis-cache.js'
import { createMemoryCache } from '../../src/cache/memory-cache.js'
import { RedisEventLog } from '../../src/streams/redis-event-log.js'
import { createTicketStore } from '../../src/streams/tickets.js'
import { createCancelBus } from '../../src/streams/cancel-bus.js'
import { SharedCallerSlots } from '../../src/streams/caller-slots.js'
import { createMemoryBuffer, createRedisBuffer } from '../../src/store/usage-buffer.js'
import type { LoggedEvent } from '../../src/streams/events.js'
import { redisPrefix } from '../support.js'
import { startRedis } from './support.js'

const COMMAND_TIMEOUT_MS = 400
const server = await startRedis()
t.teardown(() => server.close())

const timed = async <T>(run: () => Promise<T>): Promise<{ value: T, ms: number }> => {
  const started = performance.now()
  const value = await run()
  return { value, ms: performance.now() - started }
}
const codeOf = (run: () => Promise<unknown>) =>
  run().then(
    () => 'none',
    (error: { code?: string }) => error.code ?? 'no code'
  )
const token = (seq: number) => ({ seq, event: 'token', data: { chunk: `t${seq}`, index: seq - 1 } }) as LoggedEvent

t.test(
  'a frozen Redis: every component falls back at once; the event log catches up in order after the thaw',
  async t => {
    const prefix = redisPrefix()
    const redis = createRedis(server.url, { connectTimeoutMs: 1000, commandTimeoutMs: COMMAND_TIMEOUT_MS })
    redis.on('error', () => {})
    await redis.connect()
    const breaker = new RedisBreaker(redis, 300)
    attachBreaker(redis, breaker)
    const log = new RedisEventLog({
      redis,
      keyPrefix: prefix,
      ttlMs: 60_000,
      maxEvents: 1000,
      instanceId: 'here',
      leaseMs: 3000
    })
    const cache = createRedisCache(redis, { fallback: createMemoryCache({ maxEntries: 100 }) })
    const tickets = createTicketStore({ redis, keyPrefix: prefix, ticketTtlMs: 60_000, replayTtlMs: 60_000 })
    const cancelled: string[] = []
    const bus = await createCancelBus({ redis, channel: `${prefix}cancel`, onCancel: id => cancelled.push(id) })
    const slots = new SharedCallerSlots({ redis, keyPrefix: prefix, leaseMs: 3000 })
    const reader = new Redis(server.url)
    t.teardown(async () => {
      slots.close()
      await bus.close()
      await log.close().catch(() => {})
      breaker.close()
      reader.disconnect()
      redis.disconnect()
    })
    const meta = {
      streamId: 's1',
      ownerId: 'u1',
      agent: 'content',
      method: 'generateBlogPost',
      createdAt: Date.now(),
      onDisconnect: 'continue' as const,
      instanceId: 'here'
    }
    await log.create(meta)
    // A live connection of this process reading from the start: the local tier keeps what it has not read
    // (events already in Redis are otherwise released from it).
    log.local.attach('s1', 0, () => {})
    for (let seq = 1; seq <= 3; seq++) await log.append('s1', token(seq))
    const usageBuffer = createRedisBuffer({
      redis,
      breaker,
      key: `${prefix}usage-buffer`,
      fallback: createMemoryBuffer(),
      timeoutMs: COMMAND_TIMEOUT_MS,
      token: 'here'
    })
    const row = (n: number) => ({ call_id: `c${n}` })
    await usageBuffer.push([row(1), row(2)])

    server.freeze()
    t.teardown(() => server.thaw())
    const write = await timed(() => cache.set('k1', { data: 1, model: 'm', createdAt: Date.now() }, 60))
    t.ok(write.ms < 100, `a cache write does not wait for a frozen Redis (${Math.round(write.ms)} ms)`)

    // Ten ticks of four appends: at most the first waits a command timeout (and opens the breaker).
    const appends = await timed(async () => {
      for (let seq = 4; seq <= 40; seq += 4) await Promise.all([0, 1, 2, 3].map(i => log.append('s1', token(seq + i))))
    })
    t.comment(`40 events in 10 ticks appended in ${Math.round(appends.ms)} ms while Redis is frozen`)
    t.ok(appends.ms < COMMAND_TIMEOUT_MS + 1000, 'appends do not wait a command timeout per batch')
    t.equal(breaker.state().backend, 'memory', 'the breaker is open')
    t.equal(log.backlog(), 40, 'the unwritten events are kept')
    t.same(
      (await log.read('s1', 0)).map(e => e.seq),
      Array.from({ length: 43 }, (_, i) => i + 1),
      'local readers see everything'
    )

    const refusals = await timed(async () => [
      await codeOf(() => tickets.peek('amkt_unknown')),
      await codeOf(() => bus.publish('s-elsewhere'))
    ])
    t.same(
      refusals.value,
      ['AMK_SERVICE_UNAVAILABLE', 'AMK_SERVICE_UNAVAILABLE'],
      'tickets and remote cancels: 503 at once'
    )
    t.same(cancelled, ['s-elsewhere'], 'the local cancel still ran')
    const issued = await tickets.issue({ id: 'u1', role: 'user' } as never)
    t.ok(await tickets.peek(issued.ticket), 'a ticket issued meanwhile is kept here')
    const slot = await timed(() => slots.acquire('u1', 1))
    t.ok(slot.value, 'a stream slot is granted (the process cap applies)')
    const reads = await timed(() => cache.get('k1'))
    t.equal(reads.value, null, 'cache reads skip Redis')
    const pushed = await timed(() => usageBuffer.push([row(3)]))
    const replayed: unknown[] = []
    const drained = await timed(() => usageBuffer.drain(async entries => { replayed.push(...entries) }, 100))
    t.same(replayed, [row(3)], 'the usage buffer drains its fallback and leaves the frozen Redis list alone')
    t.equal(usageBuffer.depth(), 2, 'the rows in Redis still count as waiting')
    t.ok(
      pushed.ms + drained.ms < 200,
      `usage buffer push and drain did not wait for Redis (${Math.round(pushed.ms + drained.ms)} ms)`
    )
    t.ok(
      refusals.ms + slot.ms + reads.ms < 200,
      `none of them waited (${Math.round(refusals.ms + slot.ms + reads.ms)} ms)`
    )

    server.thaw()
    const deadline = Date.now() + 10_000
    while ((breaker.state().backend !== 'redis' || log.backlog() > 0) && Date.now() < deadline) { await new Promise(resolve => setTimeout(resolve, 50)) }
    await log.drain()
    t.equal(breaker.state().backend, 'redis', 'closed after the thaw')
    t.equal(log.backlog(), 0, 'the backlog was written')
    const entries = await reader.xrange(`${prefix}stream:{s1}:events`, '-', '+')
    t.same(
      entries.map(([id]) => Number(id.slice(2))),
      Array.from({ length: 43 }, (_, i) => i + 1),
      'the shared log is complete and in order'
    )
    t.same(JSON.parse((await reader.get(`${prefix}stream:{s1}:meta`)) ?? 'null'), meta)
    replayed.length = 0
    await usageBuffer.drain(async entries => { replayed.push(...entries) }, 100)
    t.same(replayed, [row(1), row(2)], 'after the thaw the Redis list is replayed, in order')
    t.equal(usageBuffer.depth(), 0)

    // The slot granted while Redis was frozen counts across replicas again: the caller is at the cap of 1.
    const slotKey = `${prefix}stream-slots:u1`
    while ((await reader.zcard(slotKey)) === 0 && Date.now() < deadline) {
      await new Promise(resolve => setTimeout(resolve, 50))
    }
    t.equal(await reader.zcard(slotKey), 1, 'the slot is registered in Redis after the thaw')
    t.equal(await slots.acquire('u1', 1, { streamId: 'another' }), null, 'the cap holds again')
  }
)

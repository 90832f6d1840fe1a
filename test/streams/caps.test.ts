// The per-caller stream cap across replicas (Redis): the shared slots on their own — exactly `max` of
// many concurrent takers on two "replicas", renewal keeps live slots, a dead replica's slots lapse, a
// Redis that cannot answer leaves the per-process cap in charge — and two app replicas where a caller at
// the cap on A and B together gets 429 on either, until a stream ends.
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { startGeminiServer } from '../fixtures/gemini-server.js'
import { SharedCallerSlots } from '../../src/streams/caller-slots.js'
import { freePort, needs, REDIS_URL, redisPrefix } from '../support.js'
import { jsonOf, openSse } from './sse-client.js'
import { buildStreams, listen, other, premium, ROUTES, stalling, until } from './support.js'

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))

/** Three replicas' shared slots on one key prefix, each with its own Redis connection; closed after the test. */
async function threeReplicas (
  t: Test,
  options: { leaseMs: number, onError?: (error: Error) => void }
): Promise<{ slots: SharedCallerSlots[], clients: Redis[] }> {
  const clients = [0, 1, 2].map(() => new Redis(REDIS_URL, { commandTimeout: 500, maxRetriesPerRequest: 1 }))
  t.teardown(() => {
    for (const client of clients) client.disconnect()
  })
  // connected: a Redis not ready yet opens the circuit breaker
  await Promise.all(clients.map(client => client.ping()))
  const keyPrefix = redisPrefix()
  const slots = clients.map(redis => new SharedCallerSlots({ redis, keyPrefix, ...options }))
  t.teardown(() => {
    for (const replica of slots) replica.close()
  })
  return { slots, clients }
}

t.test(
  'shared slots: exactly max across replicas, renewed while held, lapsed when a replica dies',
  { skip: needs('redis') },
  async t => {
    const errors: Error[] = []
    const { slots: [a, b, c], clients } = await threeReplicas(t, { leaseMs: 300, onError: e => errors.push(e) })

    const grants = await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2 ? a : b).acquire('carol', 3)))
    t.equal(grants.filter(g => g !== null).length, 3, '12 concurrent takers on two replicas: exactly 3 slots')
    t.ok(await c.acquire('bob', 3), 'another caller has its own slots')

    const onA = [await a.acquire('alice', 3), await a.acquire('alice', 3)]
    const onB = await b.acquire('alice', 3)
    t.ok(onA.every(Boolean) && onB)
    t.equal(await c.acquire('alice', 3), null, 'alice is at the cap')
    await sleep(700) // more than two leases: the holders renew
    t.equal(await c.acquire('alice', 3), null, 'held slots are renewed, not lapsed')
    await onB!()
    const freed = await c.acquire('alice', 3)
    t.ok(freed, 'a released slot is free at once')
    await freed!()

    clients[0].disconnect() // replica A dies: its two slots are no longer renewed
    await sleep(700)
    const after = await Promise.all([1, 2, 3, 4].map(() => c.acquire('alice', 3)))
    t.equal(after.filter(g => g !== null).length, 3, "the dead replica's slots lapsed")
    t.same(
      errors.filter(e => !/Connection is closed/.test(e.message)),
      []
    )
  }
)

t.test(
  "shared slots: a resume takes over its stream's slot; a replica shutting down gives every slot back at once",
  { skip: needs('redis') },
  async t => {
    const { slots: [a, b, c] } = await threeReplicas(t, { leaseMs: 60_000 })

    const onA = await Promise.all(['st_1', 'st_2', 'st_3'].map(streamId => a.acquire('alice', 3, { streamId })))
    t.ok(onA.every(Boolean))
    t.ok(await a.acquire('alice', 3, { streamId: 'st_1' }), 'another holder of st_1 here shares its slot')
    t.equal(await c.acquire('alice', 3), null, 'alice is at the cap')
    const takeover = await b.acquire('alice', 3, { streamId: 'st_2', takeOver: true })
    t.ok(
      takeover,
      'a resume of st_2 on B takes over its slot (held by A, e.g. a replica that died) instead of being refused'
    )
    t.equal(await c.acquire('alice', 3), null, 'and counts no new slot')
    t.equal(
      await b.acquire('alice', 3, { streamId: 'st_9', takeOver: true }),
      null,
      'a stream holding no slot still needs a free one'
    )

    t.equal(await a.releaseAll(), 3, 'A shuts down: all its slots at once')
    const fresh = await Promise.all([c.acquire('alice', 3), c.acquire('alice', 3)])
    t.ok(fresh.every(Boolean), 'free at once for resumes elsewhere')
    await onA[0]!() // a holder on A finishing after releaseAll changes nothing
    t.equal(await c.acquire('alice', 3), null, "B's st_2 and the two new ones: at the cap again")
  }
)

t.test('shared slots: a Redis that cannot answer grants the slot (the per-process cap applies)', async t => {
  const redis = new Redis({
    port: await freePort(),
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null
  })
  redis.on('error', () => {})
  t.teardown(() => redis.disconnect())
  const errors: Error[] = []
  const slots = new SharedCallerSlots({ redis, keyPrefix: 'x:', leaseMs: 300, onError: e => errors.push(e) })
  t.teardown(() => slots.close())
  const release = await slots.acquire('alice', 1)
  t.type(release, 'function')
  t.equal(errors.length, 1, 'the failure is reported')
})

t.test(
  'two replicas: a caller at the cap across A and B gets 429 on either until a stream ends',
  { skip: needs('redis') },
  async t => {
    const gemini = await startGeminiServer(stalling)
    t.teardown(() => gemini.close())
    const env = {
      REDIS_URL,
      REDIS_KEY_PREFIX: redisPrefix(),
      GEMINI_API_KEY: 'test-key',
      GEMINI_BASE_URL: gemini.url,
      MAX_CONCURRENT_STREAMS_PER_CALLER: '2'
    }
    const [a, b] = [await buildStreams(t, { env }), await buildStreams(t, { env })]
    const [urlA, urlB] = [await listen(a), await listen(b)]
    const open = async (url: string, headers: Record<string, string>) => {
      const stream = await openSse(`${url}/api/stream/blog`, { headers, body: ROUTES.blog.input })
      if (stream.status === 200) await stream.until(frames => frames.length > 0, 'connected')
      return stream
    }
    const first = await open(urlA, premium)
    const second = await open(urlB, premium)
    t.same([first.status, second.status], [200, 200])
    for (const url of [urlA, urlB]) {
      const refused = await open(url, premium)
      t.equal(refused.status, 429, 'the third stream, on either replica')
      t.match(await jsonOf(refused), { code: 'AMK_TOO_MANY_STREAMS', details: { limit: 2, scope: 'caller' } })
    }
    const another = await open(urlA, other)
    t.equal(another.status, 200, 'another caller is not affected')

    first.destroy()
    await until(() => a.streams.registry.openSlots === 1)
    const third = await until(async () => {
      const s = await open(urlB, premium)
      return s.status === 200 ? s : (s.destroy(), false)
    })
    t.equal(third.status, 200, 'the slot A freed is usable on B')
    for (const s of [second, another, third]) s.destroy()
  }
)

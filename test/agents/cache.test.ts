// Acceptance 4: the response cache — a repeated call is a hit with zero provider calls, TTLs per method
// (and the test override), Cache-Control: no-cache bypasses reading, clear() stays inside the agent's
// namespace — in memory and on Redis; with Redis killed mid-test calls still succeed.
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { startGeminiServer } from '../fixtures/gemini-server.js'
import { needs, REDIS_URL, redisPrefix } from '../support.js'
import { buildApp, invoke, modelAnswer, ownRedis } from './support.js'

const FLIGHTS = { from: 'Cairo', to: 'Paris', date: '2030-05-01' }
const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))

async function setup (t: Test, env: Record<string, string> = {}) {
  const gemini = await startGeminiServer(modelAnswer)
  t.teardown(() => gemini.close())
  const app = await buildApp(t, { env: { GEMINI_API_KEY: 'k', GEMINI_BASE_URL: gemini.url, ...env } })
  return { app, gemini }
}

/** The shared behaviour, run on memory and on Redis. */
async function behaviour (t: Test, env: Record<string, string>) {
  const { app, gemini } = await setup(t, env)
  const first = await invoke(app, 'travel', 'searchFlights', FLIGHTS)
  t.equal(first.headers['x-cache'], 'miss')
  t.equal(first.json().cached, false)

  // Same input with keys reordered and a default spelled out: same canonical key → hit, no provider call.
  const second = await invoke(app, 'travel', 'searchFlights', {
    passengers: 1,
    date: '2030-05-01',
    to: 'Paris',
    from: 'Cairo'
  })
  t.equal(second.statusCode, 200)
  t.equal(second.headers['x-cache'], 'hit')
  t.match(second.json(), {
    cached: true,
    usage: { inputTokens: 0, outputTokens: 0, costUsd: 0, model: 'gemini-2.5-flash' }
  })
  t.same(second.json().data, first.json().data)
  t.equal(gemini.requests.length, 1, 'the hit made no provider call')

  // no-cache: bypasses reading, calls the provider, refreshes the entry.
  gemini.respond = (request) => {
    const answer = modelAnswer(request) as { json: { disclaimer: string } }
    answer.json.disclaimer = 'fresh answer'
    return answer
  }
  const bypass = await invoke(app, 'travel', 'searchFlights', FLIGHTS, { 'cache-control': 'no-cache' })
  t.equal(bypass.headers['x-cache'], 'miss')
  t.equal(bypass.json().data.disclaimer, 'fresh answer')
  t.equal(gemini.requests.length, 2)
  const refreshed = await invoke(app, 'travel', 'searchFlights', FLIGHTS)
  t.equal(refreshed.headers['x-cache'], 'hit')
  t.equal(refreshed.json().data.disclaimer, 'fresh answer', 'the bypassing call refreshed the entry')

  // A different input is a different key.
  const other = await invoke(app, 'travel', 'searchFlights', { ...FLIGHTS, passengers: 2 })
  t.equal(other.headers['x-cache'], 'miss')

  // clear() with a pattern, inside the agent's namespace only.
  await invoke(app, 'content', 'researchTopic', { topic: 'Siwa oasis' })
  await invoke(app, 'travel', 'getVisaRequirements', { destination: 'Japan', nationality: 'Egyptian' })
  t.equal(await app.agents.cache.size('travel'), 3)
  t.equal(await app.agents.cache.clear('travel', 'searchFlights:*'), 2)
  t.equal(await app.agents.cache.size('travel'), 1, 'the visa entry stays')
  t.equal(await app.agents.cache.clear('travel', '*'), 1)
  t.equal(await app.agents.cache.size('content'), 1, 'another agent is untouched by *')
  t.equal(await app.agents.cache.clear('travel', '../content:*'), 0, 'no way out of the namespace')
  t.equal(await app.agents.cache.clear('travel', '*content*'), 0)
  t.equal(await app.agents.cache.size('content'), 1)
  await t.rejects(app.agents.cache.clear('weather' as 'travel'), { code: 'AMK_NOT_FOUND' })
  const afterClear = await invoke(app, 'travel', 'searchFlights', FLIGHTS)
  t.equal(afterClear.headers['x-cache'], 'miss')

  const metrics = await app.meters.registry.metrics()
  t.match(metrics, /cache_operations_total\{agent="travel",operation="get",result="hit"\} 2/)
  t.match(metrics, /cache_operations_total\{agent="travel",operation="get",result="miss"\} 4/)
  t.match(metrics, /cache_operations_total\{agent="travel",operation="clear",result="ok"\} 4/)
  return { app, gemini }
}

async function ttlOverride (t: Test, env: Record<string, string>) {
  const { app, gemini } = await setup(t, { ...env, CACHE_TTL_OVERRIDE_SECONDS: '1' })
  t.equal((await invoke(app, 'innovation', 'analyzeTrends', { industry: 'ecotourism' })).headers['x-cache'], 'miss')
  t.equal((await invoke(app, 'innovation', 'analyzeTrends', { industry: 'ecotourism' })).headers['x-cache'], 'hit')
  await sleep(1100)
  t.equal(
    (await invoke(app, 'innovation', 'analyzeTrends', { industry: 'ecotourism' })).headers['x-cache'],
    'miss',
    'expired after the TTL'
  )
  t.equal(gemini.requests.length, 2)
}

t.test('memory cache', async t => {
  await behaviour(t, {})
  await t.test('TTL override expires entries', t => ttlOverride(t, {}))
})

t.test('redis cache', { skip: needs('redis') }, async t => {
  const prefix = redisPrefix()
  const redis = new Redis(REDIS_URL)
  t.teardown(() => redis.quit())
  const { app } = await behaviour(t, { REDIS_URL, REDIS_KEY_PREFIX: prefix })

  const keys = await redis.keys(`${prefix}cache:*`)
  t.ok(keys.length >= 2)
  for (const key of keys) {
    t.match(
      key,
      new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}cache:(travel|content):\\w+:[0-9a-f]{64}$`)
    )
  }
  // Each entry carries its method's TTL.
  await invoke(app, 'travel', 'getVisaRequirements', { destination: 'Peru', nationality: 'Egyptian' })
  const [visaKey] = await redis.keys(`${prefix}cache:travel:getVisaRequirements:*`)
  const [flightKey] = await redis.keys(`${prefix}cache:travel:searchFlights:*`)
  t.ok(Math.abs(await redis.ttl(visaKey) - 604800) <= 2, 'visa rules: a week')
  t.ok(Math.abs(await redis.ttl(flightKey) - 300) <= 2, 'flights: five minutes')

  // Keys outside the namespace survive a clear; another replica sees the shared entries.
  await redis.set(`${prefix}cache:travelers:x`, '1')
  await redis.set(`${prefix}unrelated`, '1')
  const replica = await buildApp(t, {
    env: { REDIS_URL, REDIS_KEY_PREFIX: prefix, GEMINI_API_KEY: 'k', GEMINI_BASE_URL: 'http://127.0.0.1:9' }
  })
  t.equal(
    (await invoke(replica, 'travel', 'getVisaRequirements', { destination: 'Peru', nationality: 'Egyptian' })).headers[
      'x-cache'
    ],
    'hit',
    'shared by replicas'
  )
  await app.agents.cache.clear('travel')
  t.equal(await redis.exists(`${prefix}cache:travelers:x`, `${prefix}unrelated`), 2)
  t.equal((await redis.keys(`${prefix}cache:travel:*`)).length, 0)
  await redis.del(`${prefix}cache:travelers:x`, `${prefix}unrelated`, ...await redis.keys(`${prefix}*`))

  await t.test('TTL override expires entries', t => ttlOverride(t, { REDIS_URL, REDIS_KEY_PREFIX: redisPrefix() }))
})

t.test('redis killed mid-test: calls still succeed (miss, then the in-memory fallback)', async t => {
  const own = await ownRedis(t)
  const { app, gemini } = await setup(t, { REDIS_URL: own.url, REDIS_KEY_PREFIX: redisPrefix() })
  t.equal(app.agents.cache !== undefined && app.redis?.status, 'ready')
  t.equal((await invoke(app, 'travel', 'searchFlights', FLIGHTS)).headers['x-cache'], 'miss')
  t.equal((await invoke(app, 'travel', 'searchFlights', FLIGHTS)).headers['x-cache'], 'hit')
  await own.stop()
  const during = await invoke(app, 'travel', 'searchFlights', FLIGHTS)
  t.equal(during.statusCode, 200, 'Redis down never fails a request')
  t.equal(during.headers['x-cache'], 'miss')
  const again = await invoke(app, 'travel', 'searchFlights', FLIGHTS)
  t.equal(again.statusCode, 200)
  t.equal(again.headers['x-cache'], 'hit', 'served by the in-memory fallback while Redis is down')
  t.equal((await invoke(app, 'content', 'researchTopic', { topic: 'Nubia' })).statusCode, 200)
  t.ok(await app.agents.cache.clear('travel') >= 1, 'clear works on the fallback')
  t.equal(gemini.requests.length, 3)
})

// Scrapes are never rate-limited: the METRICS_TOKEN bearer on the main port counts against no limit (two
// replicas sharing Redis, 1,000 scrapes as fast as they go), and METRICS_PORT serves /metrics on a port of
// its own without auth, from the app and from the real entry point.
import t from 'tap'
import { Redis } from 'ioredis'
import type { FastifyInstance } from 'fastify'
import { startMetricsListener } from '../../src/plugins/metrics.js'
import { build, freePort, needs, redisPrefix, REDIS_URL } from '../support.js'
import { startServer } from '../child-server.js'

// Each build costs a PGlite cold start, seconds on a loaded machine: room beyond .taprc's 120 s.
t.setTimeout(240_000)

const TOKEN = 'metrics-token-for-tests-0123456789'
const USER_KEY = 'amk_scrape_test_user_key_0001'
const SCRAPES = 1000

/** Every rate-limit counter under the prefix, with its value. */
async function counters (redis: Redis, prefix: string): Promise<Record<string, string | null>> {
  const keys = (await redis.keys(`${prefix}rl:*`)).sort()
  const values = keys.length > 0 ? await redis.mget(keys) : []
  return Object.fromEntries(keys.map((key, i) => [key, values[i]]))
}

/** Runs `count` tasks, `concurrency` at a time; resolves with every result. */
async function pool<T> (count: number, concurrency: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = []
  let next = 0
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < count) {
      const i = next++
      results[i] = await task(i)
    }
  }))
  return results
}

t.test(
  'two replicas on one Redis: 1,000 scrapes with the METRICS_TOKEN all get 200 and count nothing',
  { skip: needs('redis') },
  async t => {
    const prefix = redisPrefix()
    const env = { REDIS_URL, REDIS_KEY_PREFIX: prefix, METRICS_TOKEN: TOKEN, VALID_API_KEYS: `${USER_KEY}:user` }
    const a = await build(t, { env })
    const b = await build(t, { env, db: null, appOptions: { db: a.db } })
    const redis = new Redis(REDIS_URL)
    t.teardown(() => redis.quit())

    // Another caller uses some of its global allowance first.
    for (const app of [a, b, a]) { t.equal((await app.inject({ url: '/api/auth/me', headers: { 'x-api-key': USER_KEY } })).statusCode, 200) }
    const before = await counters(redis, prefix)
    t.equal(
      Object.values(before)
        .map(Number)
        .reduce((x, y) => x + y, 0),
      3,
      'the other caller has 3 requests counted'
    )

    const started = Date.now()
    const statuses = await pool(SCRAPES, 25, async i => {
      const app: FastifyInstance = i % 2 ? b : a
      const url = i % 10 === 9 ? '/api/metrics/json' : '/api/metrics'
      return (await app.inject({ url, headers: { authorization: `Bearer ${TOKEN}` } })).statusCode
    })
    const seconds = (Date.now() - started) / 1000
    const tally: Record<number, number> = {}
    for (const status of statuses) tally[status] = (tally[status] ?? 0) + 1
    t.same(tally, { 200: SCRAPES }, `${SCRAPES} scrapes over two replicas in ${seconds.toFixed(1)} s: all 200`)
    t.same(await counters(redis, prefix), before, 'no rate-limit counter changed: the scrapes counted nowhere')

    const next = await a.inject({ url: '/api/auth/me', headers: { 'x-api-key': USER_KEY } })
    t.equal(next.statusCode, 200)
    t.equal(
      next.headers['ratelimit-remaining'],
      String(Number(next.headers['ratelimit-limit']) - 4),
      "the other caller's allowance is as it was"
    )
  }
)

t.test('the exemption is for the METRICS_TOKEN only: other callers of /api/metrics are still limited', async t => {
  const app = await build(t, {
    env: {
      METRICS_TOKEN: TOKEN,
      VALID_API_KEYS: `${USER_KEY}:admin`,
      RATE_LIMIT_GLOBAL_MAX: '5',
      RATE_LIMIT_EXEMPT_ROLES: 'internal'
    }
  })
  const admin = await Promise.all(
    Array.from({ length: 8 }, () => app.inject({ url: '/api/metrics', headers: { 'x-api-key': USER_KEY } }))
  )
  t.ok(admin.some(r => r.statusCode === 429), `an admin key is limited (${admin.map(r => r.statusCode).join(',')})`)
  const scrapes = await Promise.all(
    Array.from({ length: 20 }, () => app.inject({ url: '/api/metrics', headers: { authorization: `Bearer ${TOKEN}` } }))
  )
  t.same(scrapes.map(r => r.statusCode), Array(20).fill(200), 'the token is not')
})

t.test('startMetricsListener: GET /metrics on its own port, no auth, no limit; anything else 404', async t => {
  const app = await build(t, { env: { RATE_LIMIT_GLOBAL_MAX: '5' } })
  const port = await freePort()
  const server = await startMetricsListener(app, port, '127.0.0.1')
  t.teardown(() => new Promise(resolve => { server.closeAllConnections(); server.close(resolve) }))
  await app.inject('/api/status')
  const statuses = await pool(200, 10, async () => (await fetch(`http://127.0.0.1:${port}/metrics`)).status)
  t.same([...new Set(statuses)], [200], '200 scrapes, all 200')
  const res = await fetch(`http://127.0.0.1:${port}/metrics?x=1`)
  t.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/)
  t.match(await res.text(), 'http_requests_total{method="GET",route="/api/status",status_code="200"} 1')
  t.equal((await fetch(`http://127.0.0.1:${port}/api/metrics`)).status, 404)
  t.equal((await fetch(`http://127.0.0.1:${port}/metrics`, { method: 'POST' })).status, 404)
  t.equal((await app.inject('/api/metrics')).statusCode, 401, 'the main port still asks for a credential')
})

t.test('the entry point opens METRICS_PORT when set, and closes it on SIGTERM', async t => {
  const metricsPort = await freePort()
  const server = await startServer(t, ['--import=tsx', 'src/server.ts'], {
    NODE_ENV: 'development',
    LOG_LEVEL: 'warn',
    DATA_DIR: 'memory://',
    METRICS_PORT: String(metricsPort)
  })
  t.match(server.output(), `metrics listener: http://localhost:${metricsPort}/metrics`)
  const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`)
  t.equal(res.status, 200)
  t.match(await res.text(), /^# HELP /m)
  t.equal((await fetch(`http://127.0.0.1:${server.port}/api/metrics`)).status, 401, 'the main port is unchanged')
  const { code } = await server.stop()
  t.equal(code, 0, 'exits 0 on SIGTERM')
  await t.rejects(fetch(`http://127.0.0.1:${metricsPort}/metrics`), 'the metrics port is closed')
})

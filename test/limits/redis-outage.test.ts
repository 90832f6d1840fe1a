// Redis outage: with a redis-server of our own shared by two app instances, killing it (and pausing
// it) never makes a request wait beyond the command timeout, limits hold per process meanwhile, the
// switch is logged and shown in /api/health, and the shared counts are used again after a restart.
import t, { type Test } from 'tap'
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import { Redis } from 'ioredis'
import { buildWithRoutes, ownRedis } from './support.js'
import { needs, redisPrefix } from '../support.js'

const LIMIT = 6
const COMMAND_TIMEOUT_MS = 300
// Generous slack for a loaded 2-core machine; without the fallback a request would fail or hang instead.
const ANSWER_BOUND_MS = COMMAND_TIMEOUT_MS + 700

const routes: FastifyPluginAsync = async (app) => {
  app.get('/test/limited', { config: { public: true, rateLimits: [{ scope: 'outage', max: LIMIT }] } }, async () => ({
    ok: true
  }))
}

async function statuses (t: Test, app: FastifyInstance, count: number): Promise<number[]> {
  const codes: number[] = []
  for (let i = 0; i < count; i++) {
    const started = performance.now()
    const res = await app.inject({ url: '/test/limited', remoteAddress: '192.0.2.77' })
    const took = performance.now() - started
    if (took > ANSWER_BOUND_MS) t.fail(`request took ${Math.round(took)} ms`)
    codes.push(res.statusCode)
  }
  return codes
}

async function until (check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not reached in time')
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

const passed = (codes: number[]) => codes.filter(c => c === 200).length

t.test(
  'Redis killed and restarted: per-process limits meanwhile, shared counts again after',
  { skip: needs('redis') },
  async t => {
    const redis = await ownRedis(t)
    const env = {
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: redisPrefix(),
      REDIS_COMMAND_TIMEOUT_MS: String(COMMAND_TIMEOUT_MS),
      RATE_LIMIT_REDIS_RETRY_MS: '200'
    }
    const logs: string[] = []
    const a = await buildWithRoutes(t, { env, routes, logs })
    const b = await buildWithRoutes(t, { env, routes })
    t.equal(
      a.redisBreaker.retryMs,
      200,
      "the old name RATE_LIMIT_REDIS_RETRY_MS still sets the Redis breaker's retry period"
    )
    const key = `${env.REDIS_KEY_PREFIX}rl:outage:ip:192.0.2.77`

    // Shared: both instances together admit LIMIT.
    const shared = [
      ...(await statuses(t, a, LIMIT / 2)),
      ...(await statuses(t, b, LIMIT / 2)),
      ...(await statuses(t, a, 1)),
      ...(await statuses(t, b, 1))
    ]
    t.same(shared, [...Array(LIMIT).fill(200), 429, 429])
    t.equal((await a.inject('/api/health')).json().components.rateLimit.status, 'healthy')

    await redis.kill()
    // Every request answers at once from the in-memory limiter, which counts per process.
    const duringA = await statuses(t, a, LIMIT + 2)
    const duringB = await statuses(t, b, LIMIT + 2)
    t.same(duringA, [...Array(LIMIT).fill(200), 429, 429], 'instance A enforces the limit on its own')
    t.same(duringB, [...Array(LIMIT).fill(200), 429, 429], 'instance B enforces the limit on its own')
    const health = await a.inject('/api/health')
    t.equal(health.statusCode, 200)
    t.equal(health.json().components.rateLimit.status, 'degraded')
    t.match(health.json().components.rateLimit.message, /per-process in-memory limits/)
    t.ok(
      logs.some(line => line.includes('switched to per-process in-memory counters')),
      'the switch is logged'
    )

    await redis.start()
    await until(() => a.redis!.status === 'ready' && b.redis!.status === 'ready')
    await new Promise(resolve => setTimeout(resolve, 250)) // past RATE_LIMIT_REDIS_RETRY_MS
    const after = [
      ...(await statuses(t, a, LIMIT / 2)),
      ...(await statuses(t, b, LIMIT / 2)),
      ...(await statuses(t, a, 1)),
      ...(await statuses(t, b, 1))
    ]
    t.same(after, [...Array(LIMIT).fill(200), 429, 429], 'shared counts again: both instances together admit LIMIT')
    const client = new Redis(redis.url)
    t.teardown(() => client.quit())
    t.equal(Number(await client.get(key)), LIMIT + 2, 'the restarted Redis holds the shared count')
    t.equal((await a.inject('/api/health')).json().components.rateLimit.status, 'healthy')
    t.ok(
      logs.some(line => line.includes('shared counters resumed')),
      'the return is logged'
    )
  }
)

t.test('Redis paused (not answering): requests wait at most one command timeout', { skip: needs('redis') }, async t => {
  const redis = await ownRedis(t)
  const env = {
    REDIS_URL: redis.url,
    REDIS_KEY_PREFIX: redisPrefix(),
    REDIS_COMMAND_TIMEOUT_MS: String(COMMAND_TIMEOUT_MS),
    RATE_LIMIT_REDIS_RETRY_MS: '60000'
  }
  const app = await buildWithRoutes(t, { env, routes })
  t.equal(passed(await statuses(t, app, 2)), 2)
  redis.signal('SIGSTOP')
  t.teardown(() => redis.signal('SIGCONT'))
  // The first request times out on Redis and falls back; the rest use memory without waiting.
  const codes = await statuses(t, app, LIMIT + 1)
  t.same(codes, [...Array(LIMIT).fill(200), 429], 'in-memory limits while Redis does not answer')
  t.equal((await app.inject('/api/health')).json().components.rateLimit.status, 'degraded')
  redis.signal('SIGCONT')
})

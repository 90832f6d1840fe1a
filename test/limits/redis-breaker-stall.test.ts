// Acceptance 6 of issue 16: the Redis breaker judges Redis, not the event loop. Against a private
// redis-server: two replicas whose loop is blocked (synchronously, longer than the command timeout) while
// rate-limit commands are in flight keep the breaker closed and the limit shared exactly; and a frozen Redis
// (SIGSTOP) still opens it while the loop keeps stalling in every command-timeout window.
import t from 'tap'
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import { createRedis } from '../../src/plugins/redis.js'
import { RedisBreaker } from '../../src/limits/redis-failover.js'
import { startRedis } from '../faults/support.js'
import { redisPrefix } from '../support.js'
import { buildWithRoutes } from './support.js'

const KEY = 'amk_breaker_stall_user_key_0123456789'
const LIMIT = 60

const server = await startRedis()
t.teardown(() => server.close())

const routes: FastifyPluginAsync = async app => {
  app.post(
    '/test/limited',
    { config: { permission: 'agent:execute', rateLimits: [{ scope: 'stall', max: LIMIT, timeWindowMs: 600_000 }] } },
    async () => ({ ok: true })
  )
}

/** Blocks this process for `ms` (a long synchronous task, or a GC pause, as far as timers can tell). */
function block (ms: number): void {
  const end = performance.now() + ms
  while (performance.now() < end) { /* the event loop is blocked */ }
}

const tick = () => new Promise(resolve => setImmediate(resolve))
const post = (app: FastifyInstance) =>
  app.inject({ method: 'POST', url: '/test/limited', headers: { 'x-api-key': KEY } })

async function until (check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs
  while (!check()) {
    if (performance.now() > deadline) return false
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  return true
}

t.test('a blocked loop with commands in flight leaves the breaker closed and the limit shared', async t => {
  const env = {
    REDIS_URL: server.url,
    REDIS_KEY_PREFIX: redisPrefix(),
    // Well under the 1 s stalls, and long enough that no command of the counting below times out on a machine
    // busy with other suites (with 100 ms, and a 60 s window, a run beside 56 other suites once admitted all 60).
    REDIS_COMMAND_TIMEOUT_MS: '400',
    VALID_API_KEYS: `${KEY}:user`,
    RATE_LIMIT_GLOBAL_MAX: '1000000'
  }
  const replicas = [await buildWithRoutes(t, { env, routes }), await buildWithRoutes(t, { env, routes })]
  const [first] = replicas
  const queued = (app: FastifyInstance) => (app.redis as unknown as { commandQueue: { length: number } }).commandQueue

  for (let round = 0; round < 2; round++) {
    const pending = Array.from({ length: 10 }, () => post(first))
    // Block as soon as rate-limit commands are on the wire, before their replies are read: they time out.
    while (queued(first).length === 0) await tick()
    block(1000)
    for (const res of await Promise.all(pending)) t.equal(res.statusCode, 200)
  }
  for (const app of replicas) {
    // Give any confirming PING time to answer.
    t.ok(await until(() => app.redisBreaker.state().stallsIgnored >= 1 || app === replicas[1], 2000))
  }
  const state = first.redisBreaker.state()
  t.comment(`timeouts blamed on the loop: ${state.stallsIgnored}`)
  t.ok(state.stallsIgnored >= 1, 'commands did time out during the stalls (a PING then found Redis fine)')
  for (const app of replicas) {
    t.equal(app.redisBreaker.state().backend, 'redis', 'closed')
    t.equal(app.redisBreaker.state().opens, 0, 'never opened')
  }

  // The 20 requests sent before and during the stalls were counted in Redis (their INCRs ran there even
  // where the reply came too late): across both replicas exactly LIMIT - 20 more are admitted.
  let admitted = 0
  let refused = 0
  for (let i = 0; i < LIMIT; i++) {
    const res = await post(replicas[i % 2])
    if (res.statusCode === 200) admitted++
    else if (res.statusCode === 429) refused++
  }
  t.equal(admitted, LIMIT - 20, 'the limit stayed shared: the replicas counted together')
  t.equal(refused, 20)
  t.equal(first.redisBreaker.state().opens, 0)
})

t.test('a frozen Redis still opens it while the loop stalls in every command-timeout window', async t => {
  const redis = createRedis(server.url, { connectTimeoutMs: 1000, commandTimeoutMs: 500 })
  redis.on('error', () => {})
  await redis.connect()
  t.teardown(() => redis.disconnect())
  const breaker = new RedisBreaker(redis, 60_000)
  t.teardown(() => breaker.close())

  // 150 ms blocked, 150 ms free, over and over: every 500 ms window holds a stall longer than 100 ms.
  const stop = new AbortController()
  const stalls = (async () => {
    while (!stop.signal.aborted) {
      block(150)
      await new Promise(resolve => setTimeout(resolve, 150))
    }
  })()
  t.teardown(async () => { stop.abort(); await stalls })

  // Healthy Redis first: the stalls are shorter than the command timeout, so nothing times out.
  for (let i = 0; i < 10; i++) t.equal(await breaker.run(r => r.ping(), () => 'memory'), 'PONG')
  t.equal(breaker.state().backend, 'redis')

  server.freeze()
  t.teardown(() => server.thaw())
  const calls = (async () => {
    while (breaker.state().backend === 'redis') await breaker.run(r => r.get('k'), () => 'memory', 'limits')
  })()
  t.ok(await until(() => breaker.state().backend === 'memory', 10_000), 'opened')
  await calls
  t.match(breaker.state().reason, /Command timed out/)
  t.equal(breaker.state().opens, 1)
  server.thaw()
})

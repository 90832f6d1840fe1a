// Health, liveness and readiness against a real Redis and a real PostgreSQL: all up, Redis stopped
// (degraded, fast), the database unreachable (503, not ready), shutdown, the cached result with its
// status code, and a blocked event loop.
import t, { type Test } from 'tap'
import net from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { build, freePort, needs, postgresDatabase, redisPrefix, REDIS_URL } from '../support.js'
import { ownRedis } from '../limits/support.js'
import { openDatabase } from '../../src/store/database.js'

/** A TCP proxy to PostgreSQL that a test can cut (refusing and dropping connections) and restore. */
async function cuttableProxy (
  t: Test,
  target: URL
): Promise<{ url: string; cut(): Promise<void>; restore(): Promise<void> }> {
  const port = await freePort()
  const sockets = new Set<net.Socket>()
  let server: net.Server | null = null
  const listen = () =>
    new Promise<void>(resolve => {
      server = net.createServer(client => {
        const upstream = net.connect(Number(target.port || 5432), target.hostname)
        for (const s of [client, upstream]) {
          sockets.add(s)
          s.on('close', () => sockets.delete(s))
          s.on('error', () => {})
        }
        client.pipe(upstream).pipe(client)
      })
      server.listen(port, '127.0.0.1', () => resolve())
    })
  const handle = {
    url: Object.assign(new URL(target.toString()), { host: `127.0.0.1:${port}` }).toString(),
    async cut () {
      const closing = server
      server = null
      if (!closing) return
      const closed = new Promise(resolve => closing.close(resolve))
      for (const socket of sockets) socket.destroy()
      await closed
    },
    restore: listen
  }
  await listen()
  t.teardown(() => handle.cut())
  return handle
}

t.test('all up (real Redis and PostgreSQL): 200 healthy', { skip: needs('redis') || needs('postgres') }, async t => {
  const app = await build(t, {
    db: null,
    env: { DATABASE_URL: await postgresDatabase(), REDIS_URL, REDIS_KEY_PREFIX: redisPrefix() }
  })
  t.equal(app.db.kind, 'postgres')
  const res = await app.inject('/api/health')
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.equal(body.status, 'healthy', JSON.stringify(body.components))
  t.equal(body.components.redis.status, 'healthy')
  t.equal(body.components.database.status, 'healthy')
  t.match(body.components.database.message, 'postgres')
  for (const component of Object.values(body.components) as Array<{ latencyMs: number }>) { t.type(component.latencyMs, 'number') }
  t.equal((await app.inject('/api/health/ready')).statusCode, 200)
  t.equal((await app.inject('/api/health/live')).statusCode, 200)
})

t.test('Redis configured but stopped: redis unhealthy, overall degraded, 200, within the check timeout', async t => {
  const redis = await ownRedis(t)
  const timeoutMs = 1000
  const app = await build(t, {
    env: { REDIS_URL: redis.url, REDIS_KEY_PREFIX: redisPrefix(), HEALTH_CHECK_TIMEOUT_MS: String(timeoutMs) }
  })
  t.equal((await app.inject('/api/health')).json().components.redis.status, 'healthy')

  await redis.kill()
  const started = Date.now()
  const res = await app.inject('/api/health')
  const elapsed = Date.now() - started
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.equal(body.status, 'degraded')
  t.equal(body.components.redis.status, 'unhealthy')
  t.equal(body.components.database.status, 'healthy')
  t.ok(elapsed <= timeoutMs + 500, `answered in ${elapsed} ms, within the ${timeoutMs} ms check timeout`)
  t.equal((await app.inject('/api/health/ready')).statusCode, 200, 'still ready: Redis is optional')
})

t.test('Redis unreachable from the start: boot does not wait; REDIS_REQUIRED makes readiness fail', async t => {
  const url = `redis://127.0.0.1:${await freePort()}`
  const app = await build(t, { env: { REDIS_URL: url, REDIS_KEY_PREFIX: redisPrefix(), REDIS_REQUIRED: 'true' } })
  const health = await app.inject('/api/health')
  t.equal(health.statusCode, 503, 'a required Redis is critical')
  t.equal(health.json().components.redis.status, 'unhealthy')
  const ready = await app.inject('/api/health/ready')
  t.equal(ready.statusCode, 503)
  t.match(ready.json().reason, 'redis')

  const optional = await build(t, { env: { REDIS_URL: url, REDIS_KEY_PREFIX: redisPrefix() } })
  t.equal((await optional.inject('/api/health')).json().status, 'degraded')
  t.equal((await optional.inject('/api/health/ready')).statusCode, 200)
})

t.test(
  'database unreachable: /api/health 503 and /ready 503; back when it returns',
  { skip: needs('postgres') },
  async t => {
    const proxy = await cuttableProxy(t, new URL(await postgresDatabase()))
    const app = await build(t, { db: null, env: { DATABASE_URL: proxy.url } })
    t.equal((await app.inject('/api/health')).statusCode, 200)
    t.equal((await app.inject('/api/health/ready')).statusCode, 200)

    await proxy.cut()
    const health = await app.inject('/api/health')
    t.equal(health.statusCode, 503)
    t.equal(health.json().status, 'unhealthy')
    t.equal(health.json().components.database.status, 'unhealthy')
    const ready = await app.inject('/api/health/ready')
    t.equal(ready.statusCode, 503)
    t.equal(ready.json().status, 'not_ready')
    t.match(ready.json().reason, 'database unreachable')

    await proxy.restore()
    t.equal((await app.inject('/api/health')).statusCode, 200)
    t.equal((await app.inject('/api/health/ready')).statusCode, 200)
  }
)

t.test('a closed database handle is unhealthy too (PGlite)', async t => {
  const db = await openDatabase({ dataDir: 'memory://' })
  const app = await build(t, { db })
  t.equal((await app.inject('/api/health')).statusCode, 200)
  await db.close()
  t.equal((await app.inject('/api/health')).statusCode, 503)
  t.equal((await app.inject('/api/health/ready')).statusCode, 503)
})

t.test('the cached result keeps its status code', { skip: needs('postgres') }, async t => {
  const proxy = await cuttableProxy(t, new URL(await postgresDatabase()))
  const app = await build(t, { db: null, env: { DATABASE_URL: proxy.url, HEALTH_CACHE_TTL_MS: '600000' } })
  await proxy.cut()
  const first = await app.inject('/api/health')
  t.equal(first.statusCode, 503)
  await proxy.restore()
  const cached = await app.inject('/api/health')
  t.equal(cached.statusCode, 503, 'served from the cache with its 503')
  t.equal(cached.json().timestamp, first.json().timestamp, 'same report')
  t.equal(cached.json().status, 'unhealthy')
  const fresh = await app.health.run({ fresh: true })
  t.equal(fresh.statusCode, 200, 'a fresh run sees the database again')
  const next = await app.inject('/api/health')
  t.equal(next.statusCode, 200, 'and the cache now holds the 200')
})

t.test('/ready is 503 from the moment shutdown begins', async t => {
  const app = await build(t)
  t.equal((await app.inject('/api/health/ready')).statusCode, 200)
  app.lifecycle.beginShutdown()
  const res = await app.inject('/api/health/ready')
  t.equal(res.statusCode, 503)
  t.same({ status: res.json().status, reason: res.json().reason }, { status: 'not_ready', reason: 'shutting-down' })
  t.equal((await app.inject('/api/status')).json().ready, false)
})

t.test('close() flips readiness before the other owners close', async t => {
  let seen: { ready: boolean, reason?: string } | null = null
  const app = await build(t, {
    // Registered after the app, so this preClose runs after the health plugin's.
    before: (app) => app.addHook('preClose', async () => { seen = await app.health.readiness() })
  })
  await app.close()
  t.same(seen, { ready: false, reason: 'shutting-down' })
})

t.test('liveness: 503 when the event loop was blocked past EVENT_LOOP_MAX_DELAY_MS', async t => {
  const app = await build(t, { env: { EVENT_LOOP_MAX_DELAY_MS: '500' } })
  // The monitor remembers the last second or two: wait until start-up work (and a busy machine) is forgotten.
  let before = await app.inject('/api/health/live')
  for (let i = 0; i < 20 && before.statusCode !== 200; i++) {
    await sleep(500)
    before = await app.inject('/api/health/live')
  }
  t.equal(before.statusCode, 200, JSON.stringify(before.json()))
  t.equal(before.json().status, 'alive')

  const until = Date.now() + 1200
  while (Date.now() < until) { /* block the event loop */ }
  await sleep(30)
  const after = await app.inject('/api/health/live')
  t.equal(after.statusCode, 503)
  t.equal(after.json().status, 'stalled')
  t.ok(after.json().eventLoopDelayMs > 500, `reported delay ${after.json().eventLoopDelayMs} ms`)
  t.match(after.json().reason, 'exceeds 500 ms')
})

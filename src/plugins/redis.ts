// Optional Redis (REDIS_URL). Decorates app.redis with an ioredis client, or null when unset, and
// app.redisBreaker with the one circuit breaker every Redis use goes through (src/limits/redis-failover.ts):
// while it is open every component uses its in-memory fallback at once. Its state is the `redis`
// component of /api/health and the redis_breaker_open / redis_breaker_opens_total metrics.
// Boot never waits on Redis: short connect/command timeouts and no offline queue, so a command against
// a down Redis fails fast. (@fastify/redis is not used: it blocks boot until Redis answers, and a down
// Redis must only degrade the service.)
import fp from 'fastify-plugin'
import { Redis } from 'ioredis'
import { attachBreaker, RedisBreaker } from '../limits/redis-failover.js'

declare module 'fastify' {
  interface FastifyInstance {
    redis: Redis | null
    redisBreaker: RedisBreaker
  }
}

export function createRedis (
  url: string,
  options: { connectTimeoutMs: number; commandTimeoutMs: number; keyPrefix?: string }
): Redis {
  return new Redis(url, {
    lazyConnect: true,
    connectTimeout: options.connectTimeoutMs,
    commandTimeout: options.commandTimeoutMs,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    // Reconnect forever, at most every 2 s, so the shared state is used again when Redis returns.
    retryStrategy: times => Math.min(times * 200, 2000)
  })
}

export default fp(async function redisPlugin (app, opts: { client?: Redis | null }) {
  const { REDIS_URL, REDIS_CONNECT_TIMEOUT_MS, REDIS_COMMAND_TIMEOUT_MS, REDIS_RETRY_MS, RATE_LIMIT_REDIS_RETRY_MS } =
    app.config
  const retryMs = REDIS_RETRY_MS ?? RATE_LIMIT_REDIS_RETRY_MS
  const log = app.log.child({ component: 'redis' })
  if (!REDIS_URL) {
    app.decorate('redis', null)
    const alwaysOpen = new RedisBreaker(null, retryMs)
    app.decorate('redisBreaker', alwaysOpen)
    app.addHook('onClose', async () => alwaysOpen.close())
    app.health.register('redis', async () => ({
      status: 'healthy',
      message: 'not configured: in-memory stores in use'
    }))
    return
  }
  const client =
    opts.client ??
    createRedis(REDIS_URL, { connectTimeoutMs: REDIS_CONNECT_TIMEOUT_MS, commandTimeoutMs: REDIS_COMMAND_TIMEOUT_MS })
  const breaker = new RedisBreaker(client, retryMs, { log })
  attachBreaker(client, breaker)
  let wasReady = false
  client.on('ready', () => { wasReady = true; log.info('redis connected') })
  // Reconnection attempts repeat every few seconds during an outage: one line per period, not one each.
  client.on('error', (err: Error) => { if (wasReady) breaker.warn('connection', err) })
  client.on('end', () => { wasReady = false })
  client.on('close', () => { if (wasReady) breaker.warn('connection', new Error('connection lost')) })
  if (client.status === 'wait') {
    await client
      .connect()
      .catch((err: Error) => log.warn({ err: err.message }, 'redis unreachable at start; continuing degraded'))
  }
  app.decorate('redis', client)
  app.decorate('redisBreaker', breaker)

  app.health.register('redis', async () => {
    if (!breaker.usable()) {
      const state = breaker.state()
      const since = new Date(state.since).toISOString()
      return {
        status: 'unhealthy',
        message: `circuit open since ${since} (${state.reason}): in-memory fallbacks in use`,
        details: { breaker: 'open', since, opens: state.opens, retryMs }
      }
    }
    const started = performance.now()
    await client.ping().catch((err: Error) => { breaker.failure('health', err, started); throw err })
    const { opens, stallsIgnored } = breaker.state()
    return {
      status: 'healthy',
      message: `ping ${Math.round(performance.now() - started)} ms`,
      details: { breaker: 'closed', opens, stallsIgnored }
    }
  }, { critical: app.config.REDIS_REQUIRED })
  if (app.config.REDIS_REQUIRED) {
    app.health.addReadinessCheck(async () =>
      client.status === 'ready' ? null : 'redis unreachable (REDIS_REQUIRED=true)'
    )
  }
  // The metrics plugin registers after this one: the breaker's metrics are added once the app is ready.
  app.addHook('onReady', async () => {
    if (!app.hasDecorator('meters')) return
    const open = app.meters.gauge(
      'redis_breaker_open',
      '1 while the Redis circuit breaker is open (every component on its in-memory fallback)'
    )
    const opens = app.meters.counter('redis_breaker_opens_total', 'Times the Redis circuit breaker opened')
    open.set(breaker.usable() ? 0 : 1)
    breaker.onSwitch(to => {
      open.set(to === 'memory' ? 1 : 0)
      if (to === 'memory') opens.inc()
    })
  })
  app.addHook('onClose', async () => {
    breaker.close()
    if (opts.client) return
    await client.quit().catch(() => client.disconnect())
  })
}, { name: 'redis', dependencies: ['config', 'health'] })

// Optional Redis (REDIS_URL). Decorates app.redis with an ioredis client, or null when unset.
// Boot never waits on Redis: short connect/command timeouts and no offline queue, so a command against
// a down Redis fails fast and callers fall back to their in-memory path. (@fastify/redis is not used:
// it blocks boot until Redis answers, and a down Redis must only degrade the service.)
import fp from 'fastify-plugin'
import { Redis } from 'ioredis'

declare module 'fastify' {
  interface FastifyInstance {
    redis: Redis | null
  }
}

export function createRedis (url: string, options: { connectTimeoutMs: number, commandTimeoutMs: number, keyPrefix?: string }): Redis {
  return new Redis(url, {
    lazyConnect: true,
    connectTimeout: options.connectTimeoutMs,
    commandTimeout: options.commandTimeoutMs,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    // Reconnect forever, at most every 2 s, so the shared state is used again when Redis returns.
    retryStrategy: (times) => Math.min(times * 200, 2000)
  })
}

export default fp(async function redisPlugin (app, opts: { client?: Redis | null }) {
  const { REDIS_URL, REDIS_CONNECT_TIMEOUT_MS, REDIS_COMMAND_TIMEOUT_MS } = app.config
  if (!REDIS_URL) {
    app.decorate('redis', null)
    app.health.register('redis', async () => ({ status: 'healthy', message: 'not configured: in-memory stores in use' }))
    return
  }
  const client = opts.client ?? createRedis(REDIS_URL, { connectTimeoutMs: REDIS_CONNECT_TIMEOUT_MS, commandTimeoutMs: REDIS_COMMAND_TIMEOUT_MS })
  let wasReady = false
  client.on('ready', () => { wasReady = true; app.log.info('redis connected') })
  client.on('error', (err) => { if (wasReady) app.log.warn({ err: err.message }, 'redis error') })
  client.on('end', () => { wasReady = false })
  client.on('close', () => { if (wasReady) app.log.warn('redis connection lost; using in-memory fallbacks until it returns') })
  if (client.status === 'wait') {
    await client.connect().catch((err: Error) => app.log.warn({ err: err.message }, 'redis unreachable at start; continuing degraded'))
  }
  app.decorate('redis', client)
  app.health.register('redis', async () => {
    const started = Date.now()
    await client.ping()
    return { status: 'healthy', message: `ping ${Date.now() - started} ms` }
  }, { critical: app.config.REDIS_REQUIRED })
  if (app.config.REDIS_REQUIRED) {
    app.health.addReadinessCheck(async () => client.status === 'ready' ? null : 'redis unreachable (REDIS_REQUIRED=true)')
  }
  app.addHook('onClose', async () => {
    if (opts.client) return
    await client.quit().catch(() => client.disconnect())
  })
}, { name: 'redis', dependencies: ['config', 'health'] })

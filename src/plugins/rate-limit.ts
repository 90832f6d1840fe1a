// Rate limits (DESIGN §12, issue 16). Each route is counted under several scopes, independently: `global`
// (every non-public route), `admin` (agent:manage / cache:manage routes) and the route's own
// `config.rateLimits` (agent, method, coordinator, login…), each a fixed window per caller (API key or user
// id, else client IP). One onRequest hook per route, after the auth guard, counts every scope of the request
// at once — in Redis one Lua call over all the scope keys (one round trip, atomic: exact across replicas; the
// requests of one event-loop turn share the call), through the app's Redis circuit breaker, in this process's
// memory while Redis is down (src/limits/limiter-store.ts) — and answers 429 naming the exceeded scope.
// @fastify/rate-limit is no longer used: it counts one scope per call (a round trip each). The Redis keys
// are unchanged (`rl:<scope>:c:<caller>` / `rl:<scope>:ip:<address>`), so counts carry over an upgrade.
import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import { RateLimitedError, withDetails } from '../errors.js'
import {
  clientAddress,
  effectiveMax,
  ipAllowList,
  isExempt,
  routeScopes,
  type LimitSettings,
  type ScopeLimit
} from '../limits/policy.js'
import { allowListEntries, limitSettings } from '../limits/settings.js'
import type { RedisFailover } from '../limits/redis-failover.js'
import { FailoverWindows, type WindowCount, type WindowRequest } from '../limits/limiter-store.js'
import type { Permission } from '../auth/roles.js'
import type { RateLimitRule } from '../route-policy.js'

declare module 'fastify' {
  interface FastifyInstance {
    limiter: {
      settings: LimitSettings
      /** Redis or the in-memory fallback; shared with budgets (src/plugins/budgets.ts). */
      failover: RedisFailover
      /**
       * Counts one operation of an admitted request under `rules` (plus nothing else: not `global`), as a route's
       * hook would, for protocol calls that are no route of their own (MCP tools/call); throws the same 429.
       */
      enforce(request: FastifyRequest, rules: RateLimitRule[]): Promise<void>
    }
  }
}

/** Swagger UI assets are public documentation (as in the auth plugin). */
const DOCS_PREFIX = '/docs'

const seconds = (ms: number) => Math.max(1, Math.round(ms / 1000))

export default fp(async function rateLimitPlugin (app) {
  const settings = limitSettings(app.config)
  const allowed = ipAllowList(allowListEntries(app.config))
  // The app's one Redis circuit breaker (src/plugins/redis.ts), shared with every other Redis use.
  const failover = app.redisBreaker
  failover.onSwitch((to, reason) => {
    if (to === 'memory') {
      app.log.warn({ reason }, 'rate limits and budgets: Redis unavailable, switched to per-process in-memory counters')
    } else {
      app.log.info('rate limits and budgets: Redis answers again, shared counters resumed')
    }
  })
  const windows = new FailoverWindows(failover, `${app.config.REDIS_KEY_PREFIX}rl:`)
  app.decorate('limiter', {
    settings,
    failover,
    enforce: (request: FastifyRequest, rules: RateLimitRule[]) =>
      hookFor(routeScopes({ public: true, rateLimits: rules }, settings))(request)
  })
  app.features.rateLimits = app.redis
    ? 'Redis (shared by every replica; in-memory while Redis is down)'
    : 'in-memory (per process)'
  const hits = app.meters.counter('rate_limit_hits_total', 'Requests rejected by a rate limit, by scope', ['scope'])

  const clientKey = (request: FastifyRequest) =>
    request.caller ? `c:${request.caller.id}` : `ip:${clientAddress(request.ip)}`

  /** The check of one route: every scope counted in one call; RateLimit-* headers from the tightest scope. */
  function hookFor (scopes: ScopeLimit[]) {
    const limits = scopes.map(limit => ({ ...limit, timeWindowMs: Math.trunc(limit.timeWindowMs) }))
    // Each scope's maximum and the RateLimit-Policy, for a plain and for a premium caller, computed once.
    const maxes = {
      plain: limits.map(limit => effectiveMax(limit, undefined, settings)),
      premium: limits.map(limit => effectiveMax(limit, 'premium', settings))
    }
    const policyOf = (max: number[]) =>
      limits.map((limit, i) => `${max[i]};w=${seconds(limit.timeWindowMs)}`).join(', ')
    const policy = { plain: policyOf(maxes.plain), premium: policyOf(maxes.premium) }
    return async function rateLimitHook (request: FastifyRequest, reply?: FastifyReply) {
      // Prometheus (the METRICS_TOKEN bearer, only accepted on metricsToken routes) is never limited and
      // counts nothing, however many replicas and scrapers share the Redis counters.
      if (request.caller?.kind === 'metrics-token') return
      if (isExempt(request.caller, request.ip, settings, allowed)) return
      const client = clientKey(request)
      const requests = new Array<WindowRequest>(limits.length)
      for (let i = 0; i < limits.length; i++) {
        requests[i] = { key: `${limits[i].scope}:${client}`, timeWindow: limits[i].timeWindowMs }
      }
      const counts: WindowCount[] = await windows.count(requests)
      const premium = request.caller?.role === 'premium'
      // Shown: the exceeded scope with the longest wait; else the one with the fewest requests left (the
      // later reset on a tie).
      let shown = 0
      let shownRemaining = Infinity
      let exceeded = -1
      for (let i = 0; i < limits.length; i++) {
        const { current, ttl } = counts[i]
        const max = premium ? maxes.premium[i] : maxes.plain[i]
        if (current > max && (exceeded < 0 || ttl > counts[exceeded].ttl)) exceeded = i
        const remaining = Math.max(0, max - current)
        if (remaining < shownRemaining || (remaining === shownRemaining && ttl > counts[shown].ttl)) {
          shown = i
          shownRemaining = remaining
        }
      }
      if (exceeded >= 0) shown = exceeded
      const limit = limits[shown]
      const max = premium ? maxes.premium[shown] : maxes.plain[shown]
      const { ttl } = counts[shown]
      const resetSeconds = Math.max(1, Math.ceil((ttl > 0 ? ttl : limit.timeWindowMs) / 1000))
      if (reply) {
        reply.header('ratelimit-limit', max)
        reply.header('ratelimit-remaining', Math.max(0, max - counts[shown].current))
        reply.header('ratelimit-reset', resetSeconds)
        reply.header('ratelimit-policy', premium ? policy.premium : policy.plain)
      }
      if (exceeded < 0) return
      const { scope } = limit
      hits.inc({ scope })
      throw withDetails(
        new RateLimitedError(
          `Rate limit exceeded for scope '${scope}': ` +
            `at most ${max} requests per ${limit.timeWindowMs / 1000} s; retry in ${resetSeconds} s`
        ),
        { scope, limit: max, windowMs: limit.timeWindowMs, retryAfterSeconds: resetSeconds },
        { 'retry-after': String(resetSeconds) }
      )
    }
  }

  app.addHook('onRoute', (route: RouteOptions) => {
    const config = (route.config ?? {}) as { public?: boolean, permission?: Permission, rateLimits?: RateLimitRule[] }
    const scopes = routeScopes({ ...config, public: config.public || route.url.startsWith(DOCS_PREFIX) }, settings)
    if (scopes.length === 0) return
    // Appended, so it runs after the auth guard (which the auth plugin, registered first, puts first).
    route.onRequest = [...[route.onRequest ?? []].flat(), hookFor(scopes)]
  })

  // Unknown URLs are limited too, by client IP, under the global scope.
  const notFoundHook = hookFor(routeScopes({}, settings).filter(s => s.scope === 'global'))
  // Callback-style: it runs on every request, and an async hook costs a promise and a microtask each time.
  app.addHook('onRequest', (request, reply, done) => {
    if (request.is404) notFoundHook(request, reply).then(() => done(), done)
    else done()
  })

  app.health.register('rateLimit', async () => {
    const state = failover.state()
    if (!state.configured) {
      return { status: 'healthy', message: 'in-memory limiter (REDIS_URL unset): limits are per process' }
    }
    // The breaker probes on its own (one PING per retry period), so a Redis that came back is used again without
    // traffic.
    const now = failover.state()
    if (now.backend === 'redis') {
      return { status: 'healthy', message: 'Redis store: limits and budgets shared by every replica' }
    }
    const since = new Date(now.since).toISOString()
    return {
      status: 'degraded',
      message: `Redis unavailable (${now.reason}): per-process in-memory limits since ${since}`,
      details: { backend: now.backend, since }
    }
  })
}, { name: 'rate-limit', dependencies: ['config', 'redis', 'metrics', 'health', 'auth'] })

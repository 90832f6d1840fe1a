// Rate limits (DESIGN §12). @fastify/rate-limit counts, in Redis when configured (shared by every
// replica) with an in-memory fallback while Redis is down. Each route is counted under several scopes,
// independently: `global` (every non-public route), `admin` (agent:manage / cache:manage routes) and the
// route's own `config.rateLimits` (agent, method, coordinator, login…). The plugin's own per-route hook
// runs one limit per request, so this plugin builds one onRequest hook per route, after the auth guard,
// that checks every scope with `app.createRateLimit` and answers 429 naming the scope that was exceeded.
import fp from 'fastify-plugin'
import rateLimit, { normalizeIP } from '@fastify/rate-limit'
import type { FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import { RateLimitedError, withDetails } from '../errors.js'
import {
  effectiveMax,
  ipAllowList,
  isExempt,
  routeScopes,
  type LimitSettings,
  type ScopeLimit
} from '../limits/policy.js'
import { allowListEntries, limitSettings } from '../limits/settings.js'
import type { RedisFailover } from '../limits/redis-failover.js'
import { FailoverLimiterStore } from '../limits/limiter-store.js'
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

type Check = ReturnType<FastifyRequest['server']['createRateLimit']>
type Outcome = Exclude<Awaited<ReturnType<Check>>, { isAllowed: true }>

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
  app.decorate('limiter', {
    settings,
    failover,
    enforce: (request: FastifyRequest, rules: RateLimitRule[]) =>
      hookFor(routeScopes({ public: true, rateLimits: rules }, settings))(request)
  })
  app.features.rateLimits = app.redis
    ? 'Redis (shared by every replica; in-memory while Redis is down)'
    : 'in-memory (per process)'

  await app.register(rateLimit, {
    global: false,
    enableDraftSpec: true,
    store: FailoverLimiterStore.bound(failover, `${app.config.REDIS_KEY_PREFIX}rl:`),
    errorResponseBuilder: (_request, context) =>
      withDetails(new RateLimitedError(`Rate limit exceeded, retry in ${context.after}`), {
        scope: 'route',
        limit: context.max,
        retryAfterSeconds: Math.ceil(context.ttl / 1000)
      })
  })
  const hits = app.meters.counter('rate_limit_hits_total', 'Requests rejected by a rate limit, by scope', ['scope'])

  const clientKey = (request: FastifyRequest) =>
    request.caller ? `c:${request.caller.id}` : `ip:${normalizeIP(request.ip)}`

  // One limiter per distinct (scope, max, window): routes sharing a scope share its counter.
  const limiters = new Map<string, { limit: ScopeLimit, check: Check }>()
  function limiterFor (limit: ScopeLimit) {
    const id = `${limit.scope}|${limit.max}|${limit.timeWindowMs}`
    let limiter = limiters.get(id)
    if (!limiter) {
      limiter = {
        limit,
        check: app.createRateLimit({
          timeWindow: limit.timeWindowMs,
          max: (request) => effectiveMax(limit, request.caller?.role, settings),
          keyGenerator: (request) => `${limit.scope}:${clientKey(request)}`
        })
      }
      limiters.set(id, limiter)
    }
    return limiter
  }

  function hookFor (scopes: ScopeLimit[]) {
    const route = scopes.map(limiterFor)
    return async function rateLimitHook (request: FastifyRequest, reply?: FastifyReply) {
      // Prometheus (the METRICS_TOKEN bearer, only accepted on metricsToken routes) is never limited and
      // counts nothing, however many replicas and scrapers share the Redis counters.
      if (request.caller?.kind === 'metrics-token') return
      if (isExempt(request.caller, request.ip, settings, allowed)) return
      const outcomes = await Promise.all(route.map(limiter => limiter.check(request))) as Outcome[]
      let shown = 0
      let exceeded = -1
      outcomes.forEach((outcome, i) => {
        if (outcome.isExceeded && (exceeded < 0 || outcome.ttl > outcomes[exceeded].ttl)) exceeded = i
        const best = outcomes[shown]
        if (outcome.remaining < best.remaining || (outcome.remaining === best.remaining && outcome.ttl > best.ttl)) {
          shown = i
        }
      })
      if (exceeded >= 0) shown = exceeded
      const outcome = outcomes[shown]
      const resetSeconds = Math.max(1, Math.ceil((outcome.ttl > 0 ? outcome.ttl : outcome.timeWindow) / 1000))
      reply?.header('ratelimit-limit', outcome.max)
      reply?.header('ratelimit-remaining', outcome.remaining)
      reply?.header('ratelimit-reset', resetSeconds)
      reply?.header(
        'ratelimit-policy',
        outcomes.map(o => `${o.max};w=${Math.max(1, Math.round(o.timeWindow / 1000))}`).join(', ')
      )
      if (exceeded < 0) return
      const { scope } = route[exceeded].limit
      hits.inc({ scope })
      throw withDetails(
        new RateLimitedError(
          `Rate limit exceeded for scope '${scope}': ` +
            `at most ${outcome.max} requests per ${outcome.timeWindow / 1000} s; retry in ${resetSeconds} s`
        ),
        { scope, limit: outcome.max, windowMs: outcome.timeWindow, retryAfterSeconds: resetSeconds },
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
  app.addHook('onRequest', async (request, reply) => {
    if (request.is404) await notFoundHook(request, reply)
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

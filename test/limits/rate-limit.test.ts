// Rate limits through the real app: scopes counted independently, headers and 429 bodies, the
// not-found handler, allow-listed IPs, overrides, trustProxy keying, and exactness across two
// instances sharing one real Redis.
import t from 'tap'
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import { Redis } from 'ioredis'
import { buildWithRoutes, burst, countStatus } from './support.js'
import { needs, redisPrefix, REDIS_URL, testConfig } from '../support.js'
import { ConfigError } from '../../src/config.js'

// An admin key with admins not exempt: it may call every test route and counts against every limit (the
// METRICS_TOKEN bearer would not: scrapes are never limited).
const LIMIT_KEY = 'amk_limit_test_admin_key_000001'
const auth = { 'x-api-key': LIMIT_KEY }
const LIMITED_ADMIN = { VALID_API_KEYS: `${LIMIT_KEY}:admin`, RATE_LIMIT_EXEMPT_ROLES: 'internal' }

// Test-only routes shaped like the agent invoke routes (which declare the same rules).
const routes: FastifyPluginAsync = async (app) => {
  const invoke = (agent: string, method: string, methodMax: number) => ({
    config: {
      permission: 'agent:execute' as const,
      metricsToken: true,
      rateLimits: [
        { scope: agent, max: 60 },
        { scope: `${agent}.${method}`, max: methodMax }
      ]
    }
  })
  app.post('/test/travel/searchFlights', invoke('travel', 'searchFlights', 20), async () => ({ ok: true }))
  app.post('/test/travel/searchHotels', invoke('travel', 'searchHotels', 20), async () => ({ ok: true }))
  app.post('/test/plain', { config: { permission: 'agent:read', metricsToken: true } }, async () => ({ ok: true }))
  app.post('/test/admin', { config: { permission: 'agent:manage', metricsToken: true } }, async () => ({ ok: true }))
  app.get(
    '/test/public',
    { config: { public: true, rateLimits: [{ scope: 'demo', max: 3, timeWindowMs: 2000 }] } },
    async () => ({ ok: true })
  )
}

async function metric (app: FastifyInstance, scope: string): Promise<number> {
  const values = (await app.meters.registry.getSingleMetric('rate_limit_hits_total')!.get()).values
  return values.find(v => v.labels.scope === scope)?.value ?? 0
}

t.test(
  'each scope is counted independently: the 21st searchFlights is 429 while searchHotels passes (real invoke routes)',
  async t => {
    const key = 'amk_scope_test_user_key_000001'
    const app = await buildWithRoutes(t, { env: { VALID_API_KEYS: `${key}:user` } })
    const headers = { 'x-api-key': key }
    const flights = { from: 'Cairo', to: 'Tokyo', date: '2030-05-01', passengers: 1, class: 'economy' }
    for (let i = 0; i < 20; i++) {
      const res = await app.inject({
        method: 'POST',
        url: '/api/agents/travel/searchFlights',
        headers,
        payload: flights
      })
      t.equal(res.statusCode, 200)
    }
    const limited = await app.inject({
      method: 'POST',
      url: '/api/agents/travel/searchFlights',
      headers,
      payload: flights
    })
    t.equal(limited.statusCode, 429)
    t.equal(limited.json().details.scope, 'travel.searchFlights')
    t.match(limited.json().message, /scope 'travel.searchFlights': at most 20 requests per 60 s/)
    const hotels = await app.inject({
      method: 'POST',
      url: '/api/agents/travel/searchHotels',
      headers,
      payload: { destination: 'Tokyo', checkin: '2030-05-01', checkout: '2030-05-04', guests: 1, rooms: 1 }
    })
    t.equal(hotels.statusCode, 200, 'another method of the same agent still passes')
    t.equal(hotels.headers['ratelimit-limit'], '20')
    t.equal(hotels.headers['ratelimit-remaining'], '19', 'the most constrained scope is reported')
    t.equal(hotels.headers['ratelimit-policy'], '100;w=60, 60;w=60, 20;w=60', 'global, travel, travel.searchHotels')
    t.equal(await metric(app, 'travel.searchFlights'), 1)
  }
)

t.test('test routes declaring the same rules behave the same way', async t => {
  const app = await buildWithRoutes(t, { env: LIMITED_ADMIN, routes })
  for (let i = 0; i < 20; i++) await app.inject({ method: 'POST', url: '/test/travel/searchFlights', headers: auth })
  t.equal((await app.inject({ method: 'POST', url: '/test/travel/searchFlights', headers: auth })).statusCode, 429)
  t.equal((await app.inject({ method: 'POST', url: '/test/travel/searchHotels', headers: auth })).statusCode, 200)
})

t.test('429 body and headers: error shape naming the scope, RateLimit-* and Retry-After', async t => {
  const app = await buildWithRoutes(t, { routes })
  const seen: string[] = []
  for (let i = 0; i < 3; i++) {
    const res = await app.inject('/test/public')
    t.equal(res.statusCode, 200)
    t.equal(res.headers['ratelimit-limit'], '3')
    seen.push(String(res.headers['ratelimit-remaining']))
  }
  t.same(seen, ['2', '1', '0'])
  const res = await app.inject({ url: '/test/public', headers: { 'x-request-id': 'limit-test-1' } })
  t.equal(res.statusCode, 429)
  const body = res.json()
  t.same(Object.keys(body).sort(), ['code', 'details', 'error', 'message', 'requestId', 'statusCode'])
  t.equal(body.code, 'AMK_RATE_LIMITED')
  t.equal(body.error, 'Too Many Requests')
  t.equal(body.requestId, 'limit-test-1')
  t.match(body.message, /scope 'demo'/)
  t.same({ ...body.details, retryAfterSeconds: 0 }, { scope: 'demo', limit: 3, windowMs: 2000, retryAfterSeconds: 0 })
  t.ok(body.details.retryAfterSeconds >= 1 && body.details.retryAfterSeconds <= 2)
  t.equal(res.headers['retry-after'], String(body.details.retryAfterSeconds))
  t.equal(res.headers['ratelimit-remaining'], '0')
  t.equal(res.headers['ratelimit-reset'], res.headers['retry-after'])
  t.equal(await metric(app, 'demo'), 1)
})

t.test('Retry-After is within one second of the true reset, and the request passes after it', async t => {
  const app = await buildWithRoutes(t, { routes })
  const before = Date.now()
  await app.inject('/test/public')
  const after = Date.now()
  // The window opened between `before` and `after` and lasts 2000 ms.
  for (let i = 0; i < 2; i++) await app.inject('/test/public')
  const limited = await app.inject('/test/public')
  const answeredAt = Date.now()
  t.equal(limited.statusCode, 429)
  const retryAfter = Number(limited.headers['retry-after'])
  const resetAt = answeredAt + retryAfter * 1000
  t.ok(
    resetAt >= before + 2000 && resetAt - (after + 2000) <= 1000,
    `Retry-After ${retryAfter} s matches the window end`
  )
  await new Promise(resolve => setTimeout(resolve, retryAfter * 1000))
  const again = await app.inject('/test/public')
  t.equal(again.statusCode, 200, 'admitted once Retry-After has passed')
})

t.test('the global limit spans routes; admin routes have their own limit', async t => {
  const app = await buildWithRoutes(t, {
    env: { ...LIMITED_ADMIN, RATE_LIMIT_GLOBAL_MAX: '5', RATE_LIMIT_ADMIN_MAX: '2' },
    routes
  })
  const admin = []
  for (let i = 0; i < 3; i++) { admin.push((await app.inject({ method: 'POST', url: '/test/admin', headers: auth })).statusCode) }
  t.same(admin, [200, 200, 429])
  const adminBody = (await app.inject({ method: 'POST', url: '/test/admin', headers: auth })).json()
  t.equal(adminBody.details.scope, 'admin')
  // 4 global units used by the admin calls so far, so one more request passes, then global is exhausted.
  t.equal((await app.inject({ method: 'POST', url: '/test/travel/searchHotels', headers: auth })).statusCode, 200)
  const res = await app.inject({ method: 'POST', url: '/test/travel/searchFlights', headers: auth })
  t.equal(res.statusCode, 429)
  t.equal(res.json().details.scope, 'global')
  const status = await app.inject('/api/status')
  t.equal(status.statusCode, 200, 'public routes without rules are never limited')
  t.notOk(status.headers['ratelimit-limit'])
})

t.test('the not-found handler is limited per client IP', async t => {
  const app = await buildWithRoutes(t, { env: { RATE_LIMIT_GLOBAL_MAX: '3' } })
  const codes = []
  for (let i = 0; i < 4; i++) { codes.push((await app.inject({ url: `/nope/${i}`, remoteAddress: '192.0.2.10' })).statusCode) }
  t.same(codes, [404, 404, 404, 429])
  const limited = await app.inject({ url: '/nope', remoteAddress: '192.0.2.10' })
  t.equal(limited.json().details.scope, 'global')
  t.ok(limited.headers['retry-after'])
  t.equal((await app.inject({ url: '/nope', remoteAddress: '192.0.2.11' })).statusCode, 404, 'another IP is unaffected')
})

t.test('RATE_LIMIT_WHITELIST addresses and ranges are never limited', async t => {
  const app = await buildWithRoutes(t, { env: { RATE_LIMIT_WHITELIST: '198.51.100.7, 10.0.0.0/8' }, routes })
  for (const ip of ['198.51.100.7', '10.20.30.40']) {
    const codes = new Set<number>()
    for (let i = 0; i < 6; i++) codes.add((await app.inject({ url: '/test/public', remoteAddress: ip })).statusCode)
    t.same([...codes], [200], `${ip} never limited`)
  }
  const codes = []
  for (let i = 0; i < 4; i++) { codes.push((await app.inject({ url: '/test/public', remoteAddress: '198.51.100.8' })).statusCode) }
  t.same(codes, [200, 200, 200, 429], 'an address outside the list is limited')
})

t.test(
  'RATE_LIMIT_OVERRIDES replaces a scope limit; clients behind a trusted proxy are keyed by their own IP',
  async t => {
    const app = await buildWithRoutes(t, {
      env: { RATE_LIMIT_OVERRIDES: '{"demo":{"max":1,"timeWindowMs":60000}}', TRUST_PROXY: 'true' },
      routes
    })
    const first = await app.inject({ url: '/test/public', headers: { 'x-forwarded-for': '203.0.113.1' } })
    t.equal(first.headers['ratelimit-limit'], '1')
    t.equal(first.headers['ratelimit-policy'], '1;w=60')
    t.equal((await app.inject({ url: '/test/public', headers: { 'x-forwarded-for': '203.0.113.1' } })).statusCode, 429)
    t.equal((await app.inject({ url: '/test/public', headers: { 'x-forwarded-for': '203.0.113.2' } })).statusCode, 200)
  }
)

t.test('bad limit configuration fails at boot, naming each variable', async t => {
  const error = t.throws(() => testConfig({
    RATE_LIMIT_OVERRIDES: '{"travel": -1}',
    BUDGETS: '{"nobody":{"tokens":1}}',
    RATE_LIMIT_WHITELIST: '10.0.0.1, not-an-ip',
    RATE_LIMIT_EXEMPT_ROLES: 'admin,root'
  })) as ConfigError
  t.ok(error instanceof ConfigError)
  t.match(error.message, /RATE_LIMIT_OVERRIDES/)
  t.match(error.message, /BUDGETS: unknown role "nobody"/)
  t.match(error.message, /RATE_LIMIT_WHITELIST: .*not-an-ip/)
  t.match(error.message, /RATE_LIMIT_EXEMPT_ROLES: unknown roles root/)
})

t.test('exactly `limit` admitted across two instances sharing one Redis', { skip: needs('redis') }, async t => {
  for (const [scope, url, limit] of [
    ['travel.searchFlights', '/test/travel/searchFlights', 20],
    ['global', '/test/plain', 30]
  ] as const) {
    await t.test(scope, async t => {
      const env = {
        REDIS_URL,
        REDIS_KEY_PREFIX: redisPrefix(),
        ...LIMITED_ADMIN,
        RATE_LIMIT_GLOBAL_MAX: scope === 'global' ? '30' : '100'
      }
      const apps = [await buildWithRoutes(t, { env, routes }), await buildWithRoutes(t, { env, routes })]
      const urls = await Promise.all(apps.map(async app => `${await app.listen({ port: 0, host: '127.0.0.1' })}${url}`))
      const results = await burst(urls, limit * 3, { method: 'POST', headers: auth })
      t.equal(countStatus(results, 200), limit, `exactly ${limit} admitted`)
      t.equal(countStatus(results, 429), limit * 2)
      t.ok(
        results
          .filter(r => r.status === 429)
          .every(r => (r.body as { details: { scope: string } }).details.scope === scope)
      )
      const redis = new Redis(REDIS_URL)
      t.teardown(() => redis.quit())
      const [counter] = await redis.keys(`${env.REDIS_KEY_PREFIX}rl:${scope}:c:key:*`) // the admin key's counter
      const count = await redis.get(counter)
      t.equal(Number(count), limit * 3, 'the shared counter saw every request from both instances')
    })
  }
})

t.test('with Redis, Retry-After matches the key\'s remaining TTL', { skip: needs('redis') }, async t => {
  const env = { REDIS_URL, REDIS_KEY_PREFIX: redisPrefix() }
  const app = await buildWithRoutes(t, { env, routes })
  for (let i = 0; i < 3; i++) await app.inject({ url: '/test/public', remoteAddress: '192.0.2.50' })
  const limited = await app.inject({ url: '/test/public', remoteAddress: '192.0.2.50' })
  const redis = new Redis(REDIS_URL)
  t.teardown(() => redis.quit())
  const pttl = await redis.pttl(`${env.REDIS_KEY_PREFIX}rl:demo:ip:192.0.2.50`)
  t.equal(limited.statusCode, 429)
  const retryAfter = Number(limited.headers['retry-after'])
  t.ok(pttl > 0 && Math.abs(retryAfter * 1000 - pttl) <= 1000, `Retry-After ${retryAfter} s vs PTTL ${pttl} ms`)
})

t.test('callers are keyed by identity; premium gets double; admin and internal are never limited', async t => {
  const keys = {
    user: 'amk_user_key_for_limit_tests_1',
    other: 'amk_user_key_for_limit_tests_2',
    premium: 'amk_premium_key_for_limit_tests',
    admin: 'amk_admin_key_for_limit_tests__',
    internal: 'amk_internal_key_for_limit_test'
  }
  const env = {
    VALID_API_KEYS: `${keys.user}:user,${keys.other}:user,${keys.premium}:premium,${keys.admin}:admin,${keys.internal}:internal`,
    RATE_LIMIT_OVERRIDES: '{"travel.searchFlights":3}',
    RATE_LIMIT_ADMIN_MAX: '1'
  }
  const app = await buildWithRoutes(t, { env, routes })
  const run = async (key: string, url: string, count: number) => {
    const codes: number[] = []
    for (let i = 0; i < count; i++) { codes.push((await app.inject({ method: 'POST', url, headers: { 'x-api-key': key } })).statusCode) }
    return codes
  }
  t.same(await run(keys.user, '/test/travel/searchFlights', 4), [200, 200, 200, 429], 'user: 3')
  t.same(
    await run(keys.other, '/test/travel/searchFlights', 4),
    [200, 200, 200, 429],
    'another caller from the same IP has its own count'
  )
  const premium = await run(keys.premium, '/test/travel/searchFlights', 7)
  t.same(premium, [200, 200, 200, 200, 200, 200, 429], 'premium: 2 × 3')
  const premiumHeaders = await app.inject({
    method: 'POST',
    url: '/test/travel/searchHotels',
    headers: { 'x-api-key': keys.premium }
  })
  t.equal(premiumHeaders.headers['ratelimit-limit'], '40', 'premium limits are reported doubled')
  for (const role of ['admin', 'internal'] as const) {
    const codes = new Set([
      ...(await run(keys[role], '/test/travel/searchFlights', 8)),
      ...(await run(keys[role], '/test/admin', 4))
    ])
    t.same([...codes], [200], `${role} never limited`)
    const res = await app.inject({ method: 'POST', url: '/test/admin', headers: { 'x-api-key': keys[role] } })
    t.notOk(res.headers['ratelimit-limit'], `${role}: no RateLimit headers`)
  }
})

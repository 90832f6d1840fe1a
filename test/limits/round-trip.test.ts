// Every rate-limit scope of a request in one Redis round trip (issue 16): watched with MONITOR on a
// redis-server of our own, a request counted under three scopes (global, agent, method) sends one command
// (the script, carrying the three keys) and the three INCRs run inside it. While that Redis is down the
// in-memory fallback still counts every scope of each request and refuses as Redis would.
import t from 'tap'
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import { Redis } from 'ioredis'
import { buildWithRoutes, ownRedis } from './support.js'
import { needs, redisPrefix } from '../support.js'

const KEY = 'amk_round_trip_test_user_key_01'
const headers = { 'x-api-key': KEY }

// Shaped like the agent invoke routes: global + the agent's scope + the method's scope.
const routes: FastifyPluginAsync = async (app) => {
  const invoke = (method: string) => ({
    config: {
      permission: 'agent:execute' as const,
      rateLimits: [{ scope: 'travel', max: 60 }, { scope: `travel.${method}`, max: 3 }]
    }
  })
  app.post('/test/travel/searchFlights', invoke('searchFlights'), async () => ({ ok: true }))
  app.post('/test/travel/searchHotels', invoke('searchHotels'), async () => ({ ok: true }))
}

interface Seen { args: string[], source: string }

/** Everything the server executes, from a MONITOR connection; `settle()` waits until it has seen all so far. */
async function watch (url: string) {
  const seen: Seen[] = []
  const watcher = new Redis(url)
  const monitor = await watcher.monitor()
  monitor.on('monitor', (_time: string, args: string[], source: string) => { seen.push({ args, source }) })
  const other = new Redis(url)
  let marks = 0
  return {
    seen,
    /** Sends a marker through another connection and waits until MONITOR reports it. */
    async settle (): Promise<void> {
      const marker = `round-trip-marker-${++marks}`
      await other.echo(marker)
      const deadline = Date.now() + 5000
      while (!seen.some(s => s.args.includes(marker))) {
        if (Date.now() > deadline) throw new Error('MONITOR did not report the marker')
        await new Promise(resolve => setTimeout(resolve, 10))
      }
    },
    close () {
      monitor.disconnect()
      watcher.disconnect()
      other.disconnect()
    }
  }
}

const post = (app: FastifyInstance, method: string) =>
  app.inject({ method: 'POST', url: `/test/travel/${method}`, headers })

t.test('a request limited under three scopes costs one Redis round trip', { skip: needs('redis') }, async t => {
  const redis = await ownRedis(t)
  const prefix = redisPrefix()
  const app = await buildWithRoutes(t, {
    env: { REDIS_URL: redis.url, REDIS_KEY_PREFIX: prefix, VALID_API_KEYS: `${KEY}:user` },
    routes
  })
  // The first call on a new server loads the script (EVALSHA answered NOSCRIPT, then EVAL); not counted.
  t.equal((await post(app, 'searchHotels')).statusCode, 200)
  const monitor = await watch(redis.url)
  t.teardown(() => monitor.close())
  const requests = 3
  for (let i = 0; i < requests; i++) t.equal((await post(app, 'searchFlights')).statusCode, 200)
  await monitor.settle()

  const mentionsLimits = (s: Seen) => s.args.some(arg => arg.startsWith(`${prefix}rl:`))
  const sent = monitor.seen.filter(s => s.source !== 'lua' && mentionsLimits(s))
  t.equal(sent.length, requests, 'one command per request')
  for (const { args } of sent) {
    t.equal(args[0].toLowerCase(), 'evalsha', 'the cached script')
    t.equal(args[2], '3', 'over three keys')
    t.same(
      args.slice(3, 6).map(key => key.slice(prefix.length).split(':c:')[0]),
      ['rl:global', 'rl:travel', 'rl:travel.searchFlights'],
      'global, agent and method'
    )
  }
  const inside = monitor.seen.filter(s => s.source === 'lua' && s.args[0].toLowerCase() === 'incr')
  t.equal(inside.length, requests * 3, 'the three INCRs run inside the script')

  // The one call counts as three separate windows would.
  const client = new Redis(redis.url)
  t.teardown(() => client.disconnect())
  const counters = await client.keys(`${prefix}rl:*`)
  const counts = Object.fromEntries(await Promise.all(counters.map(async key =>
    [key.slice(prefix.length).split(':c:')[0], Number(await client.get(key))] as const)))
  t.same(counts, { 'rl:global': 4, 'rl:travel': 4, 'rl:travel.searchFlights': 3, 'rl:travel.searchHotels': 1 })
  const limited = await post(app, 'searchFlights')
  t.equal(limited.statusCode, 429)
  t.equal(limited.json().details.scope, 'travel.searchFlights')
})

t.test('concurrent requests share one script call and are limited exactly', { skip: needs('redis') }, async t => {
  const redis = await ownRedis(t)
  const prefix = redisPrefix()
  const app = await buildWithRoutes(t, {
    env: { REDIS_URL: redis.url, REDIS_KEY_PREFIX: prefix, VALID_API_KEYS: `${KEY}:user` },
    routes
  })
  t.equal((await post(app, 'searchHotels')).statusCode, 200) // loads the script
  const monitor = await watch(redis.url)
  t.teardown(() => monitor.close())
  const replies = await Promise.all(Array.from({ length: 8 }, () => post(app, 'searchFlights')))
  await monitor.settle()
  const codes = replies.map(r => r.statusCode)
  t.equal(codes.filter(code => code === 200).length, 3, 'the method limit (3) admits exactly three')
  t.equal(codes.filter(code => code === 429).length, 5)
  t.same(replies.map(r => Number(r.headers['ratelimit-remaining'])).sort(), [0, 0, 0, 0, 0, 0, 1, 2],
    'each request saw its own count')
  const sent = monitor.seen.filter(s => s.source !== 'lua' && s.args.some(arg => arg.startsWith(`${prefix}rl:`)))
  t.ok(sent.length < replies.length, `${sent.length} script calls for ${replies.length} requests`)
  t.equal(sent.reduce((keys, s) => keys + Number(s.args[2]), 0), 24, 'three keys for each request')
  t.equal(monitor.seen.filter(s => s.source === 'lua' && s.args[0].toLowerCase() === 'incr').length, 24)
})

t.test('Redis down: the in-memory fallback counts every scope and still limits', { skip: needs('redis') }, async t => {
  const redis = await ownRedis(t)
  const app = await buildWithRoutes(t, {
    env: {
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: redisPrefix(),
      REDIS_COMMAND_TIMEOUT_MS: '300',
      RATE_LIMIT_REDIS_RETRY_MS: '60000',
      VALID_API_KEYS: `${KEY}:user`,
      RATE_LIMIT_GLOBAL_MAX: '5'
    },
    routes
  })
  t.equal((await post(app, 'searchHotels')).statusCode, 200, 'counted in Redis (global 1)')
  await redis.kill()

  const flights = []
  for (let i = 0; i < 4; i++) flights.push(await post(app, 'searchFlights'))
  t.same(flights.map(r => r.statusCode), [200, 200, 200, 429], 'the method limit (3) holds in memory')
  const refused = flights[3]
  t.equal(refused.json().code, 'AMK_RATE_LIMITED')
  t.equal(refused.json().details.scope, 'travel.searchFlights')
  t.ok(Number(refused.headers['retry-after']) >= 1, 'Retry-After on the refusal')
  t.equal(refused.headers['ratelimit-policy'], '5;w=60, 60;w=60, 3;w=60')
  t.equal((await app.inject('/api/health')).json().components.rateLimit.status, 'degraded')

  // The memory counters started when Redis went away: 4 global units so far, so one more request passes
  // and the next is refused under `global` — every scope of each request was counted, the refused one too.
  t.equal((await post(app, 'searchHotels')).statusCode, 200)
  const global = await post(app, 'searchHotels')
  t.equal(global.statusCode, 429)
  t.equal(global.json().details.scope, 'global')
  t.equal(global.headers['ratelimit-remaining'], '0')
})

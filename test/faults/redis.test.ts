// Redis faults under invoke load (issue 12): a private redis-server frozen with SIGSTOP (a hung Redis,
// as in a network partition). No request waits more than about one command timeout, throughput stays
// within a small factor of the Redis-up figure, the one circuit breaker opens once for every component
// and closes after the thaw, warnings stay bounded per component; and an event-loop stall with a healthy
// Redis does not open the breaker. Figures are printed.
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { build, redisPrefix } from '../support.js'
import { startRedis } from './support.js'

const COMMAND_TIMEOUT_MS = 300
const RETRY_MS = 1000
const USER_KEY = 'amk_fault_user_key_0123456789abcdefghijk'
const PREMIUM_KEY = 'amk_fault_premium_key_0123456789abcdefg'
const ADMIN_KEY = 'amk_fault_admin_key_0123456789abcdefghij'
const admin = { 'x-api-key': ADMIN_KEY }
const LOAD_CONCURRENCY = 8

const server = await startRedis()
t.teardown(() => server.close())

function env (): Record<string, string> {
  return {
    REDIS_URL: server.url,
    REDIS_KEY_PREFIX: redisPrefix(),
    REDIS_COMMAND_TIMEOUT_MS: String(COMMAND_TIMEOUT_MS),
    REDIS_RETRY_MS: String(RETRY_MS),
    LLM_PROVIDER: 'offline',
    VALID_API_KEYS: `${USER_KEY}:user,${PREMIUM_KEY}:premium,${ADMIN_KEY}:admin`,
    // Limits and budgets are exercised (Redis counters) but never reached.
    RATE_LIMIT_GLOBAL_MAX: '1000000',
    RATE_LIMIT_OVERRIDES: JSON.stringify({ travel: 1_000_000, 'travel.searchFlights': 1_000_000 }),
    BUDGETS: JSON.stringify({ user: { tokens: 1_000_000_000 } })
  }
}

/** Invokes from `concurrency` loops for `ms`: answered count (all must be 200) and the slowest answer. */
async function load (
  t: Test,
  app: FastifyInstance,
  ms: number
): Promise<{ count: number; perSecond: number; maxMs: number }> {
  const end = performance.now() + ms
  let count = 0
  let maxMs = 0
  let bad = 0
  await Promise.all(
    Array.from({ length: LOAD_CONCURRENCY }, async (_, worker) => {
      for (let i = 0; performance.now() < end; i++) {
        const started = performance.now()
        const res = await app.inject({
          method: 'POST',
          url: '/api/agents/travel/searchFlights',
          headers: { 'x-api-key': USER_KEY },
          // Some repeats (cache hits), mostly new inputs (a miss, then a cache write).
          payload: { from: 'Cairo', to: `Paris ${worker}`, date: '2030-05-01', passengers: 1 + (i % 9) }
        })
        maxMs = Math.max(maxMs, performance.now() - started)
        if (res.statusCode === 200) count++
        else bad++
      }
    })
  )
  t.equal(bad, 0, 'every invoke answered 200')
  return { count, perSecond: Math.round(count / (ms / 1000)), maxMs: Math.round(maxMs) }
}

const warnings = (logs: string[]) => logs.map(line => JSON.parse(line)).filter(entry => entry.level === 40)

t.test(
  'a frozen Redis under invoke load: bounded waits, throughput kept, one breaker for all, bounded warnings',
  async t => {
    const logs: string[] = []
    const began = performance.now()
    const app = await build(t, { env: env(), logs })
    t.comment(`built in ${Math.round(performance.now() - began)} ms`)
    t.equal(app.redisBreaker.retryMs, RETRY_MS, 'REDIS_RETRY_MS sets the retry period')
    await load(t, app, 1000) // warm-up, not counted
    const up = await load(t, app, 3000)

    server.freeze()
    t.teardown(() => server.thaw())
    const logStart = logs.length
    const streams = Array.from({ length: 10 }, () =>
      app.inject({
        method: 'POST',
        url: '/api/stream/blog',
        headers: { 'x-api-key': PREMIUM_KEY },
        payload: { topic: 'Budget travel in Vietnam', length: 600 }
      })
    )
    const down = await load(t, app, 10_000) // Redis stays frozen for these 10 s of load
    const streamed = await Promise.all(streams)
    t.comment(`streams done at ${Math.round(performance.now() - began)} ms`)
    const ticket = await app.inject({
      method: 'POST',
      url: '/api/stream/tickets',
      headers: { 'x-api-key': PREMIUM_KEY }
    })
    t.comment(
      `invokes/s with Redis up: ${up.perSecond} (slowest ${up.maxMs} ms); frozen: ${down.perSecond} (slowest ${down.maxMs} ms)`
    )
    const health = (await app.inject({ url: '/api/health', headers: admin })).json()
    const outageWarnings = warnings(logs.slice(logStart))
    const perComponent = new Map<string, number>()
    for (const entry of outageWarnings) {
      perComponent.set(entry.component ?? entry.msg, (perComponent.get(entry.component ?? entry.msg) ?? 0) + 1)
    }
    t.comment(`warnings while frozen: ${outageWarnings.length} ${JSON.stringify(Object.fromEntries(perComponent))}`)
    const state = app.redisBreaker.state()
    t.ok(
      down.maxMs <= COMMAND_TIMEOUT_MS + 1000,
      `no invoke waited much more than one command timeout (slowest ${down.maxMs} ms)`
    )
    t.ok(
      down.perSecond >= up.perSecond / 4,
      `throughput within a small factor: ${down.perSecond}/s frozen vs ${up.perSecond}/s up`
    )
    t.ok(
      streamed.every(res => res.statusCode === 200 && res.body.includes('event: complete')),
      'streams complete while Redis is frozen'
    )
    t.equal(ticket.statusCode, 201, 'a stream ticket is still issued (kept on this replica)')
    t.equal(state.backend, 'memory', 'the breaker is open')
    t.equal(state.opens, 1, 'it opened once, for every component')
    t.equal(health.components.redis.status, 'unhealthy')
    t.equal(health.components.redis.details?.breaker, 'open')
    t.equal(health.components.rateLimit.status, 'degraded', 'limits report the same breaker')
    t.match(
      (await app.inject({ url: '/api/metrics', headers: admin })).body,
      /redis_breaker_open 1/,
      'the metric shows it open'
    )

    for (const [component, count] of perComponent) t.ok(count <= 3, `${component}: ${count} warning line(s)`)

    server.thaw()
    const thawed = performance.now()
    while (app.redisBreaker.state().backend !== 'redis' && performance.now() - thawed < RETRY_MS + 5000) { await new Promise(resolve => setTimeout(resolve, 50)) }
    t.equal(
      app.redisBreaker.state().backend,
      'redis',
      `closed ${Math.round(performance.now() - thawed)} ms after the thaw`
    )
    t.equal((await app.inject({ url: '/api/health', headers: admin })).json().components.redis.status, 'healthy')
    const after = await load(t, app, 1000)
    t.comment(`invokes/s after the thaw: ${after.perSecond}`)
    t.equal(app.redisBreaker.state().opens, 1, 'and it stays closed')
  }
)

t.test('an event-loop stall with a healthy Redis does not open the breaker', async t => {
  const app = await build(t, { env: env() })
  const loading = load(t, app, 3000)
  await new Promise(resolve => setTimeout(resolve, 500))
  // Stall with a command in flight (besides the load's): its reply arrives during the stall but is read
  // only after it, when the command timeout has already fired (stalling in the check phase, the next loop
  // turn runs the expired timers before it polls the socket).
  await new Promise(resolve => setImmediate(resolve))
  const inFlight = app.redisBreaker.run(redis => redis.get('amk-fault-probe'), () => 'fallback', 'test')
  const stallEnds = Date.now() + 1500
  while (Date.now() < stallEnds) { /* block the event loop */ }
  t.equal(await inFlight, 'fallback', 'the command timed out')
  await loading
  await new Promise(resolve => setTimeout(resolve, COMMAND_TIMEOUT_MS * 2))
  const state = app.redisBreaker.state()
  t.comment(`timeouts blamed on the stall: ${state.stallsIgnored}`)
  t.ok(state.stallsIgnored >= 1, 'commands did time out during the stall (a PING then found Redis fine)')
  t.equal(state.opens, 0, 'never opened')
  t.equal(state.backend, 'redis')
  t.equal((await app.inject({ url: '/api/health', headers: admin })).json().components.redis.status, 'healthy')
})

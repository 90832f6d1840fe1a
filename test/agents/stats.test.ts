// Per-agent statistics (src/agents/stats.ts): exact counts, tokens, costs and percentiles, per-agent reset,
// health from the recent error rate, and counters shared across replicas through Redis with a per-replica
// fallback while Redis is down. The shared counters are flushed once per period (src/agents/stats-flush.ts):
// pipelines per period, exact totals after a flush, reads that include this replica's pending deltas, the
// flush at shutdown, and deltas kept through a Redis outage (and not counted twice after a lost reply).
import t, { type Test } from 'tap'
import type { Redis } from 'ioredis'
import { AgentStats, type AgentStatsOptions } from '../../src/agents/stats.js'
import type { InvocationRecord, LlmCallRecord } from '../../src/agents/types.js'
import { breakerFor } from '../../src/limits/redis-failover.js'
import { createRedis } from '../../src/plugins/redis.js'
import { ownRedis } from '../limits/support.js'
import { MANAGEMENT_ENV, flight, invoke } from '../routes/support.js'
import { build, needs, REDIS_URL, redisPrefix } from '../support.js'

const caller = { id: 'u1', kind: 'api-key' as const, role: 'user' as const }
const options = (over: Partial<AgentStatsOptions> = {}): AgentStatsOptions => ({
  agents: ['travel', 'content', 'innovation'],
  keyPrefix: 'x:',
  healthWindowMs: 60_000,
  minCalls: 5,
  degradedRate: 0.2,
  unhealthyRate: 0.5,
  ...over
})

function call (over: Partial<InvocationRecord> = {}): InvocationRecord {
  return {
    traceId: 't',
    agent: 'travel',
    method: 'searchFlights',
    caller,
    input: {},
    status: 'success',
    cached: false,
    usage: { inputTokens: 0, outputTokens: 0, costUsd: 0, model: 'offline' },
    startedAt: 0,
    durationMs: 10,
    ...over
  }
}
function llm (over: Partial<LlmCallRecord> = {}): LlmCallRecord {
  return {
    traceId: 't',
    agent: 'travel',
    method: 'searchFlights',
    model: 'gemini-2.5-flash',
    caller,
    usage: { inputTokens: 100, outputTokens: 50 },
    costUsd: 0.0002,
    status: 'success',
    startedAt: 0,
    durationMs: 10,
    prompt: { system: '', prompt: '' },
    ...over
  }
}

/** 3 fresh successes (2 methods), 1 provider failure, 2 cache hits, 1 validation rejection. */
function script (stats: AgentStats) {
  const latencies = [30, 50, 70]
  latencies.forEach((ms, i) => {
    const method = i === 2 ? 'searchHotels' : 'searchFlights'
    stats.recordLlmCall(llm({ method }))
    stats.recordInvocation(call({ method, durationMs: ms }))
  })
  stats.recordLlmCall(
    llm({
      status: 'error',
      usage: { inputTokens: 100, outputTokens: 0, estimated: true },
      costUsd: 0.00003,
      error: { code: 'AMK_LLM_UNAVAILABLE', message: 'down' }
    })
  )
  stats.recordInvocation(
    call({ status: 'error', error: { code: 'AMK_LLM_UNAVAILABLE', message: 'down' }, durationMs: 90 })
  )
  stats.recordInvocation(call({ cached: true, durationMs: 1 }))
  stats.recordInvocation(call({ cached: true, durationMs: 2 }))
  stats.recordInvocation(call({ status: 'error', error: { code: 'AMK_VALIDATION', message: 'bad' }, durationMs: 0 }))
}

function checkScript (t: Test, s: Awaited<ReturnType<AgentStats['detail']>>) {
  t.match(s, {
    agent: 'travel',
    calls: 7,
    successes: 5,
    errors: 1,
    rejected: 1,
    cancelled: 0,
    cache: { hits: 2, misses: 4, hitRate: 2 / 6 },
    tokens: { input: 400, output: 150, total: 550 },
    llm: { calls: 4, errors: 1 },
    lastError: { code: 'AMK_LLM_UNAVAILABLE', message: 'down' }
  })
  t.equal(s.errorRate, 1 / 7)
  t.ok(Math.abs(s.costUsd - (0.0002 * 3 + 0.00003)) < 1e-12, `cost ${s.costUsd}`)
  t.equal(s.latencyMs.avg, Math.round((30 + 50 + 70 + 90 + 1 + 2) / 6 * 100) / 100)
  t.match(s.byMethod.searchFlights, {
    calls: 6,
    errors: 1,
    cache: { hits: 2, misses: 3 },
    tokens: { input: 300, output: 100 }
  })
  t.match(s.byMethod.searchHotels, { calls: 1, errors: 0, tokens: { input: 100, output: 50 } })
  t.match(s.byModel['gemini-2.5-flash'], { calls: 4, errors: 1, tokens: { input: 400, output: 150 } })
}

t.test('a scripted sequence gives exact counts, tokens, costs and percentiles (memory)', async t => {
  const stats = new AgentStats(options())
  script(stats)
  const detail = await stats.detail('travel')
  t.equal(detail.scope, 'replica')
  checkScript(t, detail)
  t.same(detail.latencyMs, { avg: detail.latencyMs.avg, p50: 30, p95: 90, p99: 90, max: 90, samples: 6 })
  t.match(await stats.summary('content'), { calls: 0, errorRate: 0, cache: { hitRate: 0 } })
})

t.test('streams and reset are per agent', async t => {
  const stats = new AgentStats(options())
  script(stats)
  stats.recordInvocation(call({ agent: 'content', method: 'generateBlogPost' }))
  stats.streamStarted('travel')
  stats.streamStarted('travel')
  stats.streamEnded('travel')
  stats.streamEnded('travel')
  stats.streamEnded('travel')
  stats.streamStarted('travel')
  t.same((await stats.summary('travel')).streams, { active: 1, started: 3 })
  await stats.reset('travel')
  const travel = await stats.summary('travel')
  t.match(travel, {
    calls: 0,
    errors: 0,
    tokens: { total: 0 },
    costUsd: 0,
    lastError: null,
    streams: { active: 0, started: 0 }
  })
  t.equal((await stats.summary('content')).calls, 1)
})

t.test('health: not judged below the minimum, degraded above 20 %, unhealthy above 50 %', async t => {
  const stats = new AgentStats(options())
  for (let i = 0; i < 4; i++) { stats.recordInvocation(call({ status: 'error', error: { code: 'AMK_LLM_UNAVAILABLE', message: 'x' } })) }
  t.match(stats.health('travel'), { status: 'healthy', calls: 4, errors: 4 }, '4 calls: not judged')
  for (let i = 0; i < 6; i++) stats.recordInvocation(call())
  t.match(stats.health('travel'), { status: 'degraded', calls: 10, errors: 4, errorRate: 0.4 })
  stats.recordInvocation(call({ status: 'error', error: { code: 'AMK_VALIDATION', message: 'x' } }))
  t.equal(stats.health('travel').calls, 10, 'rejections are not counted')
  for (let i = 0; i < 3; i++) { stats.recordInvocation(call({ status: 'error', error: { code: 'AMK_LLM_TIMEOUT', message: 'x' } })) }
  t.match(stats.health('travel'), { status: 'unhealthy', calls: 13, errors: 7 })
  const exactly20 = new AgentStats(options())
  for (let i = 0; i < 4; i++) exactly20.recordInvocation(call())
  exactly20.recordInvocation(call({ status: 'error', error: { code: 'AMK_INTERNAL', message: 'x' } }))
  t.match(exactly20.health('travel'), { status: 'healthy', errorRate: 0.2 }, 'exactly 20 % is not above 20 %')
})

t.test('health window forgets old calls', async t => {
  const stats = new AgentStats(options({ healthWindowMs: 1000 }))
  for (let i = 0; i < 10; i++) { stats.recordInvocation(call({ status: 'error', error: { code: 'AMK_INTERNAL', message: 'x' } })) }
  t.equal(stats.health('travel').status, 'unhealthy')
  const realNow = Date.now
  Date.now = () => realNow() + 5000
  t.teardown(() => { Date.now = realNow })
  t.match(stats.health('travel'), { status: 'healthy', calls: 0 })
})

/** A connected client on `url` for one test (its keys under `keyPrefix` are deleted afterwards). */
async function client (t: Test, keyPrefix: string, url = REDIS_URL): Promise<Redis> {
  const redis = createRedis(url, { connectTimeoutMs: 1000, commandTimeoutMs: 1000 })
  redis.on('error', () => {})
  await redis.connect()
  t.teardown(async () => {
    if (redis.status === 'ready') {
      const keys = await redis.keys(`${keyPrefix}*`)
      if (keys.length) await redis.del(...keys)
    }
    redis.disconnect()
  })
  return redis
}

async function until (check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await check()) return
    await new Promise(resolve => setTimeout(resolve, 25))
  }
  throw new Error(`gave up waiting for ${what}`)
}

/** A replica whose pending deltas are flushed only when the test says so (or at close). */
function replica (t: Test, redis: Redis, keyPrefix: string, over: Partial<AgentStatsOptions> = {}): AgentStats {
  const stats = new AgentStats(options({ redis, keyPrefix, flushMs: 60_000, ...over }))
  t.teardown(() => stats.close())
  return stats
}

t.test('counters are shared across replicas through Redis', { skip: needs('redis') }, async t => {
  const keyPrefix = redisPrefix()
  const [a, b] = [await client(t, keyPrefix), await client(t, keyPrefix)]
  const replicaA = replica(t, a, keyPrefix)
  const replicaB = replica(t, b, keyPrefix)
  script(replicaA)
  replicaB.recordInvocation(call({ agent: 'content', method: 'generateBlogPost' }))
  t.same(await a.hgetall(`${keyPrefix}agent-stats:travel`), {}, 'nothing is written on the request path')
  await replicaA.flush()
  await replicaB.flush()
  t.equal(await a.hget(`${keyPrefix}agent-stats:travel`, 't|calls'), '7', 'one flush carries the 7 calls')
  const seenByB = await replicaB.detail('travel')
  t.equal(seenByB.scope, 'cluster')
  checkScript(t, seenByB)
  t.equal(seenByB.latencyMs.samples, 0, 'percentiles are per replica')
  t.equal((await replicaA.summary('content')).calls, 1)
  await replicaA.flush()
  checkScript(t, await replicaB.detail('travel')) // a flush with nothing pending sends nothing twice

  await replicaB.reset('travel')
  t.match(
    await replicaA.summary('travel'),
    { scope: 'cluster', calls: 0, latencyMs: { samples: 0 } },
    'a reset on B also clears A'
  )
  t.equal((await replicaA.summary('content')).calls, 1, 'only that agent')

  replicaA.recordInvocation(call())
  await new Promise(resolve => setTimeout(resolve, 5)) // the reset is stamped after A's pending call
  await replicaB.reset('travel')
  replicaA.recordInvocation(call({ agent: 'content', method: 'generateBlogPost' }))
  await replicaA.flush()
  t.equal(await a.hget(`${keyPrefix}agent-stats:travel`, 't|calls'), null, "A's delta from before B's reset is dropped")
  t.equal((await replicaB.summary('content')).calls, 2, 'the other agent is flushed as usual')
})

t.test('N calls cost at most one pipeline per period, and no command on the request path', {
  skip: needs('redis')
}, async t => {
  const keyPrefix = redisPrefix()
  const redis = await client(t, keyPrefix)
  const monitor = await redis.monitor()
  t.teardown(() => monitor.disconnect())
  const seen: string[][] = []
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    if (!source.includes('lua') && args.some(arg => String(arg).startsWith(keyPrefix))) seen.push(args)
  })
  const periodMs = 100
  const started = performance.now()
  const stats = new AgentStats(options({ redis, keyPrefix, flushMs: periodMs }))
  const calls = 300
  for (let tick = 0; tick < 15; tick++) {
    for (let i = 0; i < calls / 15; i++) {
      stats.recordLlmCall(llm())
      stats.recordInvocation(call({ cached: i % 2 === 0 }))
    }
    await new Promise(resolve => setTimeout(resolve, 40))
  }
  await stats.close()
  const durationMs = performance.now() - started
  const { flushes, dropped } = stats.flushStats()
  await until(() => seen.length >= flushes, 'MONITOR to show every flush')
  const bound = Math.ceil(durationMs / periodMs) + 1
  t.ok(flushes >= 1 && flushes <= bound, `${flushes} pipelines for ${calls} calls in ${Math.round(durationMs)} ms`)
  t.same(
    [...new Set(seen.map(args => String(args[0]).toLowerCase()))],
    ['eval'],
    'every command is the flush script (one per agent with deltas, per pipeline)'
  )
  t.equal(seen.length, flushes, 'one agent with deltas: one command per pipeline')
  t.equal(dropped, 0)
  const hash = await redis.hgetall(`${keyPrefix}agent-stats:travel`)
  t.match(hash, { 't|calls': String(calls), 't|cacheHits': String(calls / 2), 't|llmCalls': String(calls) })
  t.equal(Number(hash['t|inputTokens']), calls * 100, 'totals are exact after the last flush')
  t.ok(Math.abs(Number(hash['t|costUsd']) - calls * 0.0002) < 1e-9)
})

t.test("a read includes this replica's pending deltas; a reset drops them", { skip: needs('redis') }, async t => {
  const keyPrefix = redisPrefix()
  const redis = await client(t, keyPrefix)
  const stats = replica(t, redis, keyPrefix)
  script(stats)
  stats.streamStarted('travel')
  t.same(await redis.hgetall(`${keyPrefix}agent-stats:travel`), {}, 'nothing flushed yet')
  const detail = await stats.detail('travel')
  t.equal(detail.scope, 'cluster')
  checkScript(t, detail)
  t.equal(detail.streams.started, 1)
  t.ok(detail.lastCallAt, 'the last call time is this replica\'s')

  const other = replica(t, await client(t, keyPrefix), keyPrefix)
  other.recordInvocation(call())
  await other.flush()
  t.equal((await stats.summary('travel')).calls, 8, 'Redis (1 from the other replica) plus 7 pending here')

  await stats.reset('travel')
  await stats.flush()
  t.equal((await stats.summary('travel')).calls, 0)
  t.equal(await redis.hget(`${keyPrefix}agent-stats:travel`, 't|calls'), null, 'the pending deltas were dropped')
})

t.test('a graceful stop flushes the pending statistics', { skip: needs('redis') }, async t => {
  const keyPrefix = redisPrefix()
  const redis = await client(t, keyPrefix)
  const env = { ...MANAGEMENT_ENV, REDIS_URL, REDIS_KEY_PREFIX: keyPrefix, AGENT_STATS_FLUSH_MS: '60000' }
  await t.test('two calls, then the app closes', async t => {
    const app = await build(t, { env })
    t.equal((await invoke(app, 'travel', 'searchFlights', flight('Paris'))).statusCode, 200)
    t.equal((await invoke(app, 'travel', 'searchFlights', flight('Paris'))).json().cached, true)
    t.equal(await redis.hget(`${keyPrefix}agent-stats:travel`, 't|calls'), null, 'not flushed yet (60 s period)')
  })
  t.match(await redis.hgetall(`${keyPrefix}agent-stats:travel`), {
    't|calls': '2',
    't|cacheHits': '1',
    't|llmCalls': '1',
    'm|searchFlights|calls': '2'
  })
})

t.test('Redis down, then up: the deltas kept meanwhile arrive, once', { skip: needs('redis') }, async t => {
  const server = await ownRedis(t)
  const keyPrefix = redisPrefix()
  const redis = createRedis(server.url, { connectTimeoutMs: 300, commandTimeoutMs: 300 })
  redis.on('error', () => {})
  t.teardown(() => redis.disconnect())
  await redis.connect()
  const stats = replica(t, redis, keyPrefix, { log: { warn () {} } })
  const breaker = breakerFor(redis)
  const key = (agent: string) => `${keyPrefix}agent-stats:${agent}`

  for (let i = 0; i < 3; i++) stats.recordInvocation(call())
  await server.kill()
  await stats.flush() // not sent (breaker open) or failed: either way the deltas are kept
  for (let i = 0; i < 4; i++) stats.recordInvocation(call())
  t.match(await stats.summary('travel'), { scope: 'replica', calls: 7 }, 'local figures while Redis is down')
  await server.start()
  await until(() => breaker.usable(), 'the breaker to close')
  await stats.flush() // everything pending, or a batch that failed first…
  await stats.flush() // …then what was recorded after it
  t.equal(await redis.hget(key('travel'), 't|calls'), '7', 'every call recorded while Redis was down arrived')
  t.match(await stats.summary('travel'), { scope: 'cluster', calls: 7 })

  // A paused Redis: the flush times out, yet Redis applies it when it resumes; the retry is not counted again.
  for (let i = 0; i < 2; i++) stats.recordInvocation(call({ agent: 'content', method: 'generateBlogPost' }))
  server.signal('SIGSTOP')
  await stats.flush() // times out (the breaker opens, or on a stalled loop confirms with a PING first)
  t.equal((await stats.summary('content')).calls, 2, 'the unconfirmed batch still counts in the reads')
  server.signal('SIGCONT')
  await until(async () => (await redis.hget(key('content'), 't|calls').catch(() => null)) === '2', 'the late apply')
  await until(() => breaker.usable(), 'the breaker to close')
  await stats.flush()
  t.equal(await redis.hget(key('content'), 't|calls'), '2', 'the resent batch was recognised and not applied twice')
  t.equal((await stats.summary('content')).calls, 2)
})

t.test('Redis down: records never throw and reads fall back to the replica figures', async t => {
  const dead = createRedis('redis://127.0.0.1:1', { connectTimeoutMs: 100, commandTimeoutMs: 100 })
  dead.on('error', () => {})
  t.teardown(() => dead.disconnect())
  await dead.connect().catch(() => {})
  const stats = new AgentStats(options({ redis: dead, log: { warn () {} } }))
  script(stats)
  const detail = await stats.detail('travel')
  t.equal(detail.scope, 'replica')
  checkScript(t, detail)
  await stats.reset('travel')
  t.equal((await stats.summary('travel')).calls, 0)
})

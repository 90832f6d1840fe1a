// Per-agent statistics (src/agents/stats.ts): exact counts, tokens, costs and percentiles, per-agent reset,
// health from the recent error rate, and counters shared across replicas through Redis with a per-replica
// fallback while Redis is down.
import t, { type Test } from 'tap'
import { AgentStats, type AgentStatsOptions } from '../../src/agents/stats.js'
import type { InvocationRecord, LlmCallRecord } from '../../src/agents/types.js'
import { createRedis } from '../../src/plugins/redis.js'
import { needs, REDIS_URL, redisPrefix } from '../support.js'

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

t.test('counters are shared across replicas through Redis', { skip: needs('redis') }, async t => {
  const keyPrefix = redisPrefix()
  const a = createRedis(REDIS_URL, { connectTimeoutMs: 1000, commandTimeoutMs: 1000 })
  const b = createRedis(REDIS_URL, { connectTimeoutMs: 1000, commandTimeoutMs: 1000 })
  await Promise.all([a.connect(), b.connect()])
  t.teardown(async () => {
    const keys = await a.keys(`${keyPrefix}*`)
    if (keys.length) await a.del(...keys)
    a.disconnect(); b.disconnect()
  })
  const replicaA = new AgentStats(options({ redis: a, keyPrefix }))
  const replicaB = new AgentStats(options({ redis: b, keyPrefix }))
  script(replicaA)
  replicaB.recordInvocation(call({ agent: 'content', method: 'generateBlogPost' }))
  await a.ping(); await b.ping() // pipelines written before these replies
  const seenByB = await replicaB.detail('travel')
  t.equal(seenByB.scope, 'cluster')
  checkScript(t, seenByB)
  t.equal(seenByB.latencyMs.samples, 0, 'percentiles are per replica')
  t.equal((await replicaA.summary('content')).calls, 1)

  await replicaB.reset('travel')
  t.match(
    await replicaA.summary('travel'),
    { scope: 'cluster', calls: 0, latencyMs: { samples: 0 } },
    'a reset on B also clears A'
  )
  t.equal((await replicaA.summary('content')).calls, 1, 'only that agent')
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

// Acceptance (issue 5, points 1, 2 and 5): the management routes report exactly what the agents did,
// cache clear/warm stay inside one agent, stats reset touches one agent, and every route checks its
// permission.
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { build, needs, REDIS_URL, redisPrefix } from '../support.js'
import {
  ADMIN_KEY,
  MANAGEMENT_ENV,
  USER_KEY,
  blog,
  flight,
  get,
  invoke,
  post,
  switchableProvider,
  visa
} from './support.js'

const close = (a: number, b: number) => Math.abs(a - b) < 1e-9

async function ledger (app: FastifyInstance, agent: string) {
  const rows = await app.db.query<{ calls: string; input: string; output: string; cost: string }>(
    'SELECT count(*) AS calls, coalesce(sum(input_tokens), 0) AS input, coalesce(sum(output_tokens), 0) AS output, coalesce(sum(cost_usd), 0) AS cost FROM usage_ledger WHERE agent = $1',
    [agent]
  )
  return {
    calls: Number(rows[0].calls),
    input: Number(rows[0].input),
    output: Number(rows[0].output),
    cost: Number(rows[0].cost)
  }
}

t.test(
  'after successes, a provider failure and cache hits, the four read endpoints report exactly those figures',
  async t => {
    const { provider, state } = switchableProvider()
    const app = await build(t, { env: MANAGEMENT_ENV, appOptions: { llmProvider: provider } })

    const replies: Awaited<ReturnType<typeof invoke>>[] = []
    replies.push(await invoke(app, 'travel', 'searchFlights', flight('Paris')))
    replies.push(await invoke(app, 'travel', 'searchFlights', flight('Rome')))
    replies.push(await invoke(app, 'travel', 'getVisaRequirements', visa('Japan')))
    state.failing = true
    const failed = await invoke(app, 'travel', 'searchFlights', flight('Oslo'))
    state.failing = false
    replies.push(await invoke(app, 'travel', 'searchFlights', flight('Paris')))
    replies.push(await invoke(app, 'travel', 'searchFlights', flight('Rome')))
    t.same(
      replies.map(r => r.statusCode),
      [200, 200, 200, 200, 200]
    )
    t.equal(failed.statusCode, 502)
    t.same(
      replies.map(r => r.json().cached),
      [false, false, false, true, true]
    )
    t.equal(state.calls, 4, 'three fresh calls and the failed one reached the provider')

    const fresh = replies.slice(0, 3).map(r => r.json().usage)
    const spent = await ledger(app, 'travel')
    t.equal(spent.calls, 4)
    t.equal(
      spent.input,
      fresh.reduce((n, u) => n + u.inputTokens, 0),
      'the call the provider rejected is recorded but not charged'
    )
    t.equal(
      spent.output,
      fresh.reduce((n, u) => n + u.outputTokens, 0),
      'the failed call produced no output tokens'
    )
    t.ok(spent.cost > 0)

    const expected = {
      agent: 'travel',
      calls: 6,
      successes: 5,
      errors: 1,
      rejected: 0,
      cancelled: 0,
      cache: { hits: 2, misses: 4, hitRate: 2 / 6 },
      tokens: { input: spent.input, output: spent.output, total: spent.input + spent.output },
      llm: { calls: 4, errors: 1 },
      streams: { active: 0, started: 0 },
      lastError: { code: 'AMK_LLM_UNAVAILABLE' }
    }

    const overview = await get(app, '/api/agents/overview')
    t.equal(overview.statusCode, 200)
    const body = overview.json()
    const travel = body.agents.find((a: { agent: string }) => a.agent === 'travel')
    t.match(travel, { ...expected, scope: 'replica', health: 'healthy' })
    t.equal(travel.errorRate, 1 / 6)
    t.ok(close(travel.costUsd, spent.cost), `overview cost ${travel.costUsd} = ledger ${spent.cost}`)
    t.equal(travel.latencyMs.samples, 6)
    t.match(
      body.agents.find((a: { agent: string }) => a.agent === 'content'),
      { calls: 0, errors: 0, costUsd: 0, tokens: { total: 0 } }
    )
    t.match(body.totals, { calls: 6, errors: 1, tokens: { input: spent.input, output: spent.output } })
    t.same(
      body.agents.map((a: { agent: string }) => a.agent),
      ['travel', 'content', 'innovation']
    )

    const status = await get(app, '/api/agents/travel/status', USER_KEY)
    t.equal(status.statusCode, 200)
    t.match(status.json(), { agent: 'travel', model: 'offline', health: 'healthy', statistics: expected })
    t.ok(status.json().methods.includes('searchFlights'))
    t.ok(close(status.json().statistics.costUsd, spent.cost))

    const metrics = (await get(app, '/api/agents/travel/metrics')).json()
    t.match(metrics, expected)
    t.match(metrics.byMethod.searchFlights, {
      calls: 5,
      successes: 4,
      errors: 1,
      cache: { hits: 2, misses: 3 },
      llm: { calls: 3, errors: 1 }
    })
    t.match(metrics.byMethod.getVisaRequirements, {
      calls: 1,
      successes: 1,
      errors: 0,
      cache: { hits: 0, misses: 1 },
      tokens: { input: fresh[2].inputTokens, output: fresh[2].outputTokens }
    })
    t.match(metrics.byModel.offline, { calls: 4, errors: 1, tokens: { input: spent.input, output: spent.output } })
    t.ok(close(metrics.byModel.offline.costUsd, spent.cost))
    t.equal(metrics.cache.entries, 3, 'three responses are cached')

    const traces = (await get(app, '/api/agents/travel/traces')).json()
    t.match(traces, { agent: 'travel', limit: 100, count: 6 })
    const ids = traces.traces.map((tr: { id: string }) => tr.id)
    t.same(
      [ids[0], ids[1], ids[3], ids[4], ids[5]],
      [4, 3, 2, 1, 0].map(i => replies[i].json().traceId),
      "newest first; ids are the replies' traceIds"
    )
    t.match(traces.traces[0], {
      operation: 'searchFlights',
      status: 'success',
      cached: true,
      llmCalls: 0,
      usage: { inputTokens: 0, outputTokens: 0, costUsd: 0 }
    })
    t.match(traces.traces[2], {
      operation: 'searchFlights',
      status: 'error',
      cached: false,
      llmCalls: 1,
      error: { code: 'AMK_LLM_UNAVAILABLE' }
    })
    t.match(traces.traces[3], {
      operation: 'getVisaRequirements',
      model: 'offline',
      llmCalls: 1,
      usage: { inputTokens: fresh[2].inputTokens, outputTokens: fresh[2].outputTokens, costUsd: fresh[2].costUsd }
    })
    t.equal((await get(app, '/api/agents/travel/traces?limit=2')).json().traces.length, 2)
    t.equal((await get(app, '/api/agents/travel/traces?limit=1001')).statusCode, 400)
    t.equal((await get(app, '/api/agents/content/traces')).json().count, 0)
  }
)

t.test('unknown agents get a 404 listing the agents', async t => {
  const app = await build(t, { env: MANAGEMENT_ENV })
  for (const url of [
    '/api/agents/nobody/status',
    '/api/agents/nobody/metrics',
    '/api/agents/nobody/health',
    '/api/agents/nobody/traces'
  ]) {
    const res = await get(app, url)
    t.equal(res.statusCode, 404, url)
    t.same(res.json().details, { availableAgents: ['travel', 'content', 'innovation'] })
  }
  t.equal((await post(app, '/api/agents/nobody/cache/clear', {})).statusCode, 404)
})

for (const backend of ['memory', 'redis'] as const) {
  t.test(
    `cache clear stays inside the agent's namespace; warm makes the next calls hits (${backend})`,
    { skip: backend === 'redis' && needs('redis') },
    async t => {
      const env =
        backend === 'redis' ? { ...MANAGEMENT_ENV, REDIS_URL, REDIS_KEY_PREFIX: redisPrefix() } : MANAGEMENT_ENV
      const app = await build(t, { env })
      if (app.redis) {
        t.teardown(async () => {
          const keys = await app.redis!.keys(`${env.REDIS_KEY_PREFIX}*`)
          if (keys.length) await app.redis!.del(...keys)
        })
      }
      const cachedAgain = async (agent: string, method: string, input: object) =>
        (await invoke(app, agent, method, input)).json().cached
      await invoke(app, 'travel', 'searchFlights', flight('Paris'))
      await invoke(app, 'travel', 'getVisaRequirements', visa('Japan'))
      await invoke(app, 'content', 'generateBlogPost', blog('Cairo on a budget'))

      const byMethod = await post(app, '/api/agents/travel/cache/clear', { pattern: 'searchFlights*' })
      t.equal(byMethod.statusCode, 200)
      t.match(byMethod.json(), { success: true, agent: 'travel', pattern: 'searchFlights*', deleted: 1 })
      t.equal(await cachedAgain('travel', 'getVisaRequirements', visa('Japan')), true, 'other methods stay cached')

      const all = await post(app, '/api/agents/travel/cache/clear', { pattern: '*' })
      t.equal(all.json().deleted, 1, 'the visa entry')
      t.equal(
        await cachedAgain('content', 'generateBlogPost', blog('Cairo on a budget')),
        true,
        '`*` on travel leaves content cached'
      )
      t.equal(await cachedAgain('travel', 'getVisaRequirements', visa('Japan')), false, 'travel entries are gone')
      for (const sneaky of ['*content*', '../content:*', '*:content:*']) {
        const res = await post(app, '/api/agents/travel/cache/clear', { pattern: sneaky })
        t.ok(res.statusCode === 400 || res.json().deleted === 0, `${sneaky} cannot reach content (${res.statusCode})`)
      }
      t.equal(await cachedAgain('content', 'generateBlogPost', blog('Cairo on a budget')), true)
      const noBody = await post(app, '/api/agents/content/cache/clear', {})
      t.match(noBody.json(), { pattern: '*', deleted: 1 })
      t.equal((await post(app, '/api/agents/travel/cache/clear', { pattern: 'a b' })).statusCode, 400)

      const warm = await post(app, '/api/agents/travel/cache/warm', {
        requests: [
          { method: 'searchFlights', input: flight('Lisbon') },
          { method: 'getVisaRequirements', input: visa('Peru') },
          { method: 'noSuchMethod', input: {} },
          { method: 'searchFlights', input: { from: 'X' } }
        ]
      })
      t.equal(warm.statusCode, 200)
      const report = warm.json()
      t.match(report, { success: false, agent: 'travel', warmed: 2, failed: 2 })
      t.match(report.results[0], { index: 0, method: 'searchFlights', status: 'warmed', alreadyCached: false })
      t.match(report.results[2], { status: 'failed', error: { statusCode: 404, code: 'AMK_NOT_FOUND' } })
      t.match(report.results[3], { status: 'failed', error: { statusCode: 400, code: 'AMK_VALIDATION' } })
      t.ok(report.results[3].error.details, 'validation details are reported')
      t.equal(await cachedAgain('travel', 'searchFlights', flight('Lisbon')), true, 'warmed → hit')
      t.equal(await cachedAgain('travel', 'getVisaRequirements', visa('Peru')), true, 'warmed → hit')
      const again = (
        await post(app, '/api/agents/travel/cache/warm', {
          requests: [{ method: 'searchFlights', input: flight('Lisbon') }]
        })
      ).json()
      t.match(again, { success: true, warmed: 1, failed: 0, results: [{ alreadyCached: true }] })
      t.equal((await post(app, '/api/agents/travel/cache/warm', { requests: [] })).statusCode, 400)
    }
  )
}

t.test('stats/reset zeroes that agent only', async t => {
  const app = await build(t, { env: MANAGEMENT_ENV })
  await invoke(app, 'travel', 'searchFlights', flight('Paris'))
  await invoke(app, 'travel', 'searchFlights', flight('Paris'))
  await invoke(app, 'content', 'generateBlogPost', blog('Nile cruises'))
  const reset = await post(app, '/api/agents/travel/stats/reset')
  t.equal(reset.statusCode, 200)
  t.match(reset.json(), { success: true, agent: 'travel' })
  const travel = (await get(app, '/api/agents/travel/metrics')).json()
  t.match(travel, {
    calls: 0,
    errors: 0,
    cache: { hits: 0, misses: 0 },
    tokens: { total: 0 },
    costUsd: 0,
    llm: { calls: 0 },
    latencyMs: { samples: 0 },
    byMethod: {},
    byModel: {}
  })
  const content = (await get(app, '/api/agents/content/metrics')).json()
  t.match(content, { calls: 1, cache: { misses: 1 }, llm: { calls: 1 } })
  t.ok(content.tokens.total > 0)
  t.equal(
    (await invoke(app, 'travel', 'searchFlights', flight('Paris'))).json().cached,
    true,
    'the reset leaves the cache alone'
  )
  t.match((await get(app, '/api/agents/travel/status', USER_KEY)).json().statistics, { calls: 1, cache: { hits: 1 } })
})

t.test('permissions per route: user, admin, anonymous', async t => {
  const app = await build(t, { env: MANAGEMENT_ENV })
  const routes: Array<
    [string, string, object | undefined, 'agent:read' | 'agent:stats' | 'cache:manage' | 'agent:manage']
  > = [
    ['GET', '/api/agents/list', undefined, 'agent:read'],
    ['GET', '/api/agents/overview', undefined, 'agent:stats'],
    ['GET', '/api/agents/travel/health', undefined, 'agent:read'],
    ['GET', '/api/agents/travel/status', undefined, 'agent:read'],
    ['GET', '/api/agents/travel/metrics', undefined, 'agent:stats'],
    ['GET', '/api/agents/travel/traces', undefined, 'agent:stats'],
    ['POST', '/api/agents/travel/cache/clear', {}, 'cache:manage'],
    [
      'POST',
      '/api/agents/travel/cache/warm',
      { requests: [{ method: 'searchFlights', input: flight('Paris') }] },
      'cache:manage'
    ],
    ['POST', '/api/agents/travel/stats/reset', undefined, 'agent:manage']
  ]
  for (const [method, url, payload, permission] of routes) {
    const as = (key?: string) =>
      app.inject({
        method: method as 'GET' | 'POST',
        url,
        ...(key ? { headers: { 'x-api-key': key } } : {}),
        ...(payload ? { payload } : {})
      })
    const user = await as(USER_KEY)
    const userAllowed = permission === 'agent:read'
    t.equal(user.statusCode, userAllowed ? 200 : 403, `user ${method} ${url}`)
    if (!userAllowed) t.match(user.json(), { code: 'AMK_FORBIDDEN', message: new RegExp(permission) })
    t.equal((await as(ADMIN_KEY)).statusCode, 200, `admin ${method} ${url}`)
    t.equal((await as()).statusCode, 401, `anonymous ${method} ${url}`)
  }
  const first = await get(app, '/api/agents/list', USER_KEY)
  const second = await get(app, '/api/agents/list', ADMIN_KEY)
  t.equal(first.headers['content-type'], 'application/json; charset=utf-8')
  t.equal(second.body, first.body, 'the same bytes for every caller (serialized once)')
  const list = first.json()
  // Exactly what the route's schema serializer writes: only the schema's properties, none dropped.
  t.same(Object.keys(list), ['count', 'agents'])
  t.same(Object.keys(list.agents[0]).sort(), ['capabilities', 'defaultModel', 'description', 'methods', 'model', 'name', 'rateLimit'])
  t.equal(list.count, 3)
  const travel = list.agents.find((a: { name: string }) => a.name === 'travel')
  t.match(travel, { defaultModel: 'flash', model: 'offline', rateLimit: 60 })
  t.match(
    travel.methods.find((m: { name: string }) => m.name === 'searchFlights'),
    { path: '/api/agents/travel/searchFlights', cacheTtl: 300, rateLimit: 20 }
  )
})

t.test('two replicas sharing Redis report cluster-wide counters', { skip: needs('redis') }, async t => {
  const env = { ...MANAGEMENT_ENV, REDIS_URL, REDIS_KEY_PREFIX: redisPrefix() }
  const a = await build(t, { env })
  const b = await build(t, { env })
  t.teardown(async () => {
    const keys = await a.redis!.keys(`${env.REDIS_KEY_PREFIX}*`)
    if (keys.length) await a.redis!.del(...keys)
  })
  await invoke(a, 'travel', 'searchFlights', flight('Paris'))
  await invoke(b, 'travel', 'searchFlights', flight('Paris')) // a hit: the response cache is shared too
  await invoke(b, 'travel', 'getVisaRequirements', visa('Chile'))
  // Each replica sends its counters once per AGENT_STATS_FLUSH_MS; flush now rather than wait a period.
  await Promise.all([a.agentStats.flush(), b.agentStats.flush()])
  for (const replica of [a, b]) {
    const stats = (await get(replica, '/api/agents/travel/metrics')).json()
    t.match(stats, { scope: 'cluster', calls: 3, cache: { hits: 1, misses: 2 }, llm: { calls: 2 } })
  }
  t.equal((await get(a, '/api/agents/travel/metrics')).json().latencyMs.samples, 1, 'percentiles are per replica')
  await post(b, '/api/agents/travel/stats/reset')
  t.match((await get(a, '/api/agents/travel/metrics')).json(), {
    scope: 'cluster',
    calls: 0,
    latencyMs: { samples: 0 }
  })
})

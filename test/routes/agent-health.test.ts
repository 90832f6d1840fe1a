// Acceptance (issue 5, point 6): an agent's health follows its recent error rate — not judged under
// 5 calls, degraded above 20 %, unhealthy above 50 % (503) — with failures from an injected provider;
// /api/health carries the same verdict in its `agents` component. Other agents stay healthy.
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { build } from '../support.js'
import { MANAGEMENT_ENV, USER_KEY, get, invoke, switchableProvider, visa, type Switchable } from './support.js'

async function calls (app: FastifyInstance, sw: Switchable, outcome: 'ok' | 'fail', count: number) {
  sw.state.failing = outcome === 'fail'
  for (let i = 0; i < count; i++) {
    // A new input each time, so every call reaches the provider (no cache hit).
    const res = await invoke(app, 'travel', 'getVisaRequirements', visa(`Land-${outcome}-${sw.state.calls}`))
    if (res.statusCode !== (outcome === 'ok' ? 200 : 502)) throw new Error(`unexpected ${res.statusCode}: ${res.body}`)
  }
  sw.state.failing = false
}

async function health (app: FastifyInstance, agent = 'travel') {
  const res = await get(app, `/api/agents/${agent}/health`, USER_KEY)
  return { code: res.statusCode, body: res.json() }
}

async function component (app: FastifyInstance) {
  return (await app.inject('/api/health')).json().components.agents
}

t.test('healthy → not judged → degraded → unhealthy as the error rate crosses 20 % and 50 %', async t => {
  const sw = switchableProvider()
  const app = await build(t, { env: MANAGEMENT_ENV, appOptions: { llmProvider: sw.provider } })

  t.match(await health(app), {
    code: 200,
    body: {
      agent: 'travel',
      status: 'healthy',
      calls: 0,
      minCalls: 5,
      thresholds: { degraded: 0.2, unhealthy: 0.5 },
      provider: { ok: true }
    }
  })

  await calls(app, sw, 'fail', 4)
  t.match(
    await health(app),
    { code: 200, body: { status: 'healthy', calls: 4, errors: 4, errorRate: 1 } },
    '4 failures: fewer than 5 calls, not judged'
  )

  await calls(app, sw, 'ok', 16)
  t.match(
    await health(app),
    { code: 200, body: { status: 'healthy', calls: 20, errors: 4, errorRate: 0.2 } },
    'exactly 20 %: still healthy'
  )
  t.equal((await component(app)).status, 'healthy')

  await calls(app, sw, 'fail', 1)
  t.match(
    await health(app),
    { code: 200, body: { status: 'degraded', calls: 21, errors: 5 } },
    '5/21 ≈ 23.8 %: degraded'
  )
  const degraded = await component(app)
  t.equal(degraded.status, 'degraded')
  t.match(degraded.details.travel, { status: 'degraded', errors: 5, calls: 21 })
  t.match(degraded.details.content, { status: 'healthy', calls: 0 })

  await calls(app, sw, 'fail', 11)
  t.match(
    await health(app),
    { code: 200, body: { status: 'degraded', calls: 32, errors: 16, errorRate: 0.5 } },
    'exactly 50 %: degraded, not unhealthy'
  )
  await calls(app, sw, 'fail', 1)
  const unhealthy = await health(app)
  t.match(
    unhealthy,
    { code: 503, body: { status: 'unhealthy', calls: 33, errors: 17 } },
    '17/33 ≈ 51.5 %: unhealthy, 503'
  )
  t.match(unhealthy.body.message, /51\.5% errors \(17\/33\) > 50%/)

  const report = await app.inject('/api/health')
  t.equal(report.json().components.agents.status, 'unhealthy')
  t.match(report.json().components.agents.message, /travel unhealthy, content healthy, innovation healthy/)
  t.not(report.json().status, 'healthy', 'the overall status is degraded by it')
  t.match(await health(app, 'content'), { code: 200, body: { status: 'healthy' } }, 'other agents are unaffected')
  t.equal((await get(app, '/api/agents/travel/status', USER_KEY)).json().health, 'unhealthy')
  t.equal(
    (await get(app, '/api/agents/overview')).json().agents.find((a: { agent: string }) => a.agent === 'travel').health,
    'unhealthy'
  )
})

t.test('cached answers count as healthy calls; rejected requests are not counted', async t => {
  const sw = switchableProvider()
  const app = await build(t, { env: MANAGEMENT_ENV, appOptions: { llmProvider: sw.provider } })
  await calls(app, sw, 'fail', 3)
  await calls(app, sw, 'ok', 1)
  for (let i = 0; i < 5; i++) await invoke(app, 'travel', 'getVisaRequirements', visa('Land-ok-3')) // cache hits
  t.equal((await invoke(app, 'travel', 'getVisaRequirements', { destination: 'X' })).statusCode, 400)
  t.match(await health(app), { code: 200, body: { status: 'degraded', calls: 9, errors: 3 } }, '3/9 ≈ 33 %')
})

t.test('an unreachable provider makes the agent unhealthy (503) whatever its error rate', async t => {
  const sw = switchableProvider()
  const app = await build(t, { env: MANAGEMENT_ENV, appOptions: { llmProvider: sw.provider } })
  sw.state.checkOk = false
  const res = await health(app, 'innovation')
  t.match(res, {
    code: 503,
    body: { status: 'unhealthy', provider: { ok: false, message: 'injected: provider unreachable' }, calls: 0 }
  })
  t.match(res.body.message, /^provider: injected: provider unreachable/)
})

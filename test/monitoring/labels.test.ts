// Rejections, throttles and failures are distinct label values: a budget refusal is
// agent_executions_total{status="rejected"} (as in /api/agents/overview), not "error"; login and API-key
// throttling show as auth_attempts_total{result="throttled"}, not as failures.
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { build } from '../support.js'
import { backends, buildOn, login, ADMIN } from '../auth/support.js'

// Each build costs a PGlite cold start, seconds on a loaded machine: room beyond .taprc's 120 s.
t.setTimeout(240_000)

const KEY = 'amk_labels_test_user_key_0001'

async function value (app: FastifyInstance, name: string, labels: Record<string, string>): Promise<number> {
  const metric = app.meters.registry.getSingleMetric(name)
  if (!metric) return 0
  const found = (await metric.get()).values.find(v =>
    Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want)
  )
  return found?.value ?? 0
}

t.test('a budget refusal counts as agent_executions_total{status="rejected"}', async t => {
  const app = await build(t, { env: { VALID_API_KEYS: `${KEY}:user`, BUDGETS: '{"user":{"tokens":1}}' } })
  const visa = (nationality: string) => app.inject({
    method: 'POST',
    url: '/api/agents/travel/getVisaRequirements',
    headers: { 'x-api-key': KEY, 'cache-control': 'no-cache' },
    payload: { destination: 'Japan', nationality, duration: 10 }
  })
  t.equal((await visa('Egypt')).statusCode, 200, 'the first call is admitted (nothing spent yet)')
  const refused = await visa('Peru')
  t.equal(refused.statusCode, 429)
  t.equal(refused.json().code, 'AMK_BUDGET_EXCEEDED')
  const labels = { agent: 'travel', method: 'getVisaRequirements' }
  t.equal(await value(app, 'agent_executions_total', { ...labels, status: 'rejected' }), 1, 'rejected')
  t.equal(await value(app, 'agent_executions_total', { ...labels, status: 'error' }), 0, 'not an error')
  t.equal(await value(app, 'agent_executions_total', { ...labels, status: 'success' }), 1)
  const exposition = (await app.inject({ url: '/api/metrics', headers: { 'x-api-key': KEY } }))
  t.equal(exposition.statusCode, 403, 'a user cannot read metrics (the counter is checked in the registry)')
})

t.test('login throttling counts as auth_attempts_total{method="password",result="throttled"}', async t => {
  const app = await buildOn(t, backends[0], { env: { LOGIN_RATE_LIMIT: '1' } })
  t.equal((await login(app, ADMIN.email, 'wrong-password', '10.9.0.1')).statusCode, 401)
  for (let i = 0; i < 2; i++) t.equal((await login(app, ADMIN.email, 'wrong-password', '10.9.0.1')).statusCode, 429)
  t.equal(
    await value(app, 'auth_attempts_total', { method: 'password', result: 'failure' }),
    1,
    'one failure (the password was checked once)'
  )
  t.equal(await value(app, 'auth_attempts_total', { method: 'password', result: 'throttled' }), 2, 'two throttled')
})

t.test('API-key throttling counts as auth_attempts_total{method="api_key",result="throttled"}', async t => {
  const app = await buildOn(t, backends[0], { env: { API_KEY_FAILURE_LIMIT: '1' } })
  const me = (key: string) =>
    app.inject({ url: '/api/auth/me', headers: { 'x-api-key': key }, remoteAddress: '10.9.0.2' })
  t.equal((await me('amk_bogus_key_for_labels_test_000')).statusCode, 401)
  for (let i = 1; i <= 2; i++) t.equal((await me(`amk_bogus_key_for_labels_test_00${i}`)).statusCode, 429)
  t.equal(await value(app, 'auth_attempts_total', { method: 'api_key', result: 'failure' }), 1)
  t.equal(await value(app, 'auth_attempts_total', { method: 'api_key', result: 'throttled' }), 2)
})

t.test('throttled series exist from the start (at zero), so rate() works before the first one', async t => {
  const app = await build(t, { env: { METRICS_PUBLIC: 'true' } })
  const body = (await app.inject('/api/metrics')).body
  for (const method of ['password', 'api_key']) { t.match(body, `auth_attempts_total{method="${method}",result="throttled"} 0`) }
})

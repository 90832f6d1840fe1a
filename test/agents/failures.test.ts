// Acceptance 2 over HTTP: Gemini failure modes against the local Gemini server, through the real SDK —
// 429 + Retry-After then success, pro 503 → flash, 500 ×3 → 502, invalid JSON repaired once (or 502),
// a hang → 504, and a client that disconnects mid-call (the upstream socket is closed, usage recorded).
import t, { type Test } from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { startGeminiServer } from '../fixtures/gemini-server.js'
import { ADMIN_KEY, buildApp, invoke, modelAnswer } from './support.js'

async function setup (t: Test, env: Record<string, string> = {}) {
  const gemini = await startGeminiServer(modelAnswer)
  t.teardown(() => gemini.close())
  const app = await buildApp(t, {
    env: { GEMINI_API_KEY: 'k', GEMINI_BASE_URL: gemini.url, LLM_RETRY_BASE_MS: '5', LLM_TIMEOUT_MS: '500', ...env }
  })
  const ledger = () =>
    app.db.query<{
      model: string
      status: string
      input_tokens: number
      output_tokens: number
      estimated: boolean
      method: string
    }>('SELECT model, status, input_tokens, output_tokens, estimated, method FROM usage_ledger ORDER BY id')
  return { app, gemini, ledger }
}

const FLIGHTS = { from: 'Cairo', to: 'Paris', date: '2030-05-01' }
const IDEAS = { industry: 'travel', count: 2 }

async function until<T> (probe: () => Promise<T | undefined | false>): Promise<T> {
  for (;;) {
    const value = await probe()
    if (value) return value
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

t.test('429 with Retry-After, then success: one call retried, one ledger row with the final usage', async t => {
  const { app, gemini, ledger } = await setup(t)
  gemini.script.push({ status: 429, retryAfter: '1' })
  gemini.respond = (request) => ({ ...modelAnswer(request), usage: { input: 321, output: 123 } })
  const res = await invoke(app, 'travel', 'searchFlights', FLIGHTS)
  t.equal(res.statusCode, 200)
  t.equal(gemini.requests.length, 2)
  t.match(res.json().usage, { inputTokens: 321, outputTokens: 123, model: 'gemini-2.5-flash' })
  t.same(await ledger(), [
    {
      model: 'gemini-2.5-flash',
      status: 'success',
      input_tokens: 321,
      output_tokens: 123,
      estimated: false,
      method: 'searchFlights'
    }
  ])
})

t.test('503 on the pro model: falls back to flash and the reply names it', async t => {
  const { app, gemini, ledger } = await setup(t)
  gemini.script.push({ status: 503 })
  const res = await invoke(app, 'innovation', 'generateIdeas', IDEAS)
  t.equal(res.statusCode, 200)
  t.same(gemini.requests.map(r => r.model), ['gemini-2.5-pro', 'gemini-2.5-flash'])
  t.equal(res.json().usage.model, 'gemini-2.5-flash')
  t.match(await ledger(), [{ model: 'gemini-2.5-flash', status: 'success' }])
})

t.test(
  '500 three times: 502 AMK_LLM_UNAVAILABLE, an error row that is not charged (issue 12), error metrics',
  async t => {
    const { app, gemini, ledger } = await setup(t)
    gemini.script.push({ status: 500 }, { status: 500 }, { status: 500 })
    const res = await invoke(app, 'travel', 'searchFlights', FLIGHTS)
    t.equal(res.statusCode, 502)
    t.match(res.json(), { code: 'AMK_LLM_UNAVAILABLE', statusCode: 502 })
    t.equal(gemini.requests.length, 3)
    const rows = await ledger()
    t.match(
      rows,
      [{ status: 'error', input_tokens: 0, output_tokens: 0, estimated: false }],
      'rejected without output: recorded, not charged'
    )
    const metrics = await app.meters.registry.metrics()
    t.match(metrics, /llm_calls_total\{model="gemini-2.5-flash",agent="travel",status="error"\} 1/)
    t.match(metrics, /agent_executions_total\{agent="travel",method="searchFlights",status="error"\} 1/)
    t.equal(res.headers['x-cache'], undefined, 'errors are not cached')
  }
)

t.test('invalid JSON once: one repair call with the problems, then 200', async t => {
  const { app, gemini, ledger } = await setup(t)
  gemini.script.push({ text: 'Sure! Here are some flights: {not json' })
  const res = await invoke(app, 'travel', 'searchFlights', FLIGHTS)
  t.equal(res.statusCode, 200)
  t.equal(gemini.requests.length, 2)
  const repair = gemini.requests[1].prompt
  t.match(repair, /Your previous answer could not be used:\n- output is not valid JSON/)
  t.match(repair, /Sure! Here are some flights/)
  t.match(repair, /"to": "Paris"/, 'the repair keeps the original request')
  const rows = await ledger()
  t.equal(rows.length, 2, 'both provider calls are in the ledger')
  t.same(res.json().usage.inputTokens, rows[0].input_tokens + rows[1].input_tokens, 'the reply sums both calls')
})

t.test('valid JSON with the wrong shape is repaired too; a second bad answer is a 502 with the problems', async t => {
  const { app, gemini } = await setup(t)
  gemini.script.push({ json: { flights: 'none' } }, { json: { route: 1 } })
  const res = await invoke(app, 'travel', 'searchFlights', FLIGHTS)
  t.equal(res.statusCode, 502)
  const body = res.json()
  t.equal(body.code, 'AMK_LLM_INVALID_OUTPUT')
  t.ok(body.details.problems.some((p: { field: string }) => p.field === 'output.route'), 'names the bad field')
  t.match(gemini.requests[1].prompt, /output\.flights/, 'the repair prompt listed the first problems')
  t.equal(gemini.requests.length, 2, 'exactly one repair attempt')
})

t.test('a hang: 504 AMK_LLM_TIMEOUT after LLM_TIMEOUT_MS, the upstream request is closed', async t => {
  const { app, gemini, ledger } = await setup(t, { LLM_TIMEOUT_MS: '300' })
  gemini.script.push({ hang: true })
  const aborted = gemini.waitForAbort()
  const res = await invoke(app, 'travel', 'searchFlights', FLIGHTS)
  t.equal(res.statusCode, 504)
  t.equal(res.json().code, 'AMK_LLM_TIMEOUT')
  await aborted
  t.match(await ledger(), [{ status: 'error', estimated: true }])
})

t.test('a client that disconnects mid-call aborts the upstream request; the ledger records it cancelled', async t => {
  const { app, gemini, ledger } = await setup(t, { LLM_TIMEOUT_MS: '60000' })
  gemini.script.push({ hang: true })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  const aborted = gemini.waitForAbort()
  const request = http.request({
    host: '127.0.0.1',
    port,
    method: 'POST',
    path: '/api/agents/travel/searchFlights',
    headers: { 'content-type': 'application/json', 'x-api-key': ADMIN_KEY }
  })
  request.on('error', () => {}) // we hang up on purpose
  request.end(JSON.stringify(FLIGHTS))
  await until(async () => gemini.requests.length > 0)
  request.destroy()
  const upstream = await aborted
  t.equal(upstream.model, 'gemini-2.5-flash', 'the Gemini server saw its socket close')
  const rows = await until(async () => { const r = await ledger(); return r.length > 0 && r })
  t.match(rows, [{ status: 'cancelled', estimated: true, method: 'searchFlights' }])
  const metrics = await until(async () => {
    const m = await app.meters.registry.metrics()
    return m.includes('status="cancelled"') && m
  })
  t.match(metrics, /agent_executions_total\{agent="travel",method="searchFlights",status="cancelled"\} 1/)
  t.match(metrics, /llm_calls_total\{model="gemini-2.5-flash",agent="travel",status="cancelled"\} 1/)
})

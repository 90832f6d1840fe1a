// Issue 12, accounting over HTTP: an unpriced model is named in /api/health and the banner notices and
// refused under a dollar budget (unless LLM_PRICING prices it); a call the provider rejected is recorded but
// not charged; a cancelled stream's trace carries the ledger's estimate; while ledger writes hang, the reply
// is not held beyond USAGE_WRITE_TIMEOUT_MS and the row lands once after recovery.
import t, { type Test } from 'tap'
import type { Database } from '../../src/store/database.js'
import { startGeminiServer } from '../fixtures/gemini-server.js'
import { needs, pglite, redisPrefix, REDIS_URL } from '../support.js'
import { ADMIN_KEY, buildApp, invoke, modelAnswer, USER_KEY } from './support.js'

const FLIGHTS = { from: 'Cairo', to: 'Paris', date: '2030-05-01' }
const UNPRICED = 'gemini-9-experimental'

async function gemini (t: Test) {
  const server = await startGeminiServer(modelAnswer)
  t.teardown(() => server.close())
  return server
}

t.test('an unpriced model is named in health and notices, and refused under a dollar budget unless priced', async t => {
  const server = await gemini(t)
  const env = {
    GEMINI_API_KEY: 'k',
    GEMINI_BASE_URL: server.url,
    GEMINI_MODEL: UNPRICED,
    BUDGETS: '{"user":{"usd":0.0001}}'
  }
  const app = await buildApp(t, { env })
  const health = (await app.inject({ method: 'GET', url: '/api/health', headers: { 'x-api-key': ADMIN_KEY } })).json()
  t.match(health.components.usage, {
    status: 'degraded',
    message: new RegExp(UNPRICED),
    details: { unpricedModels: [UNPRICED] }
  })
  t.ok(app.notices.some(line => line.includes(UNPRICED)), 'the startup banner names it')

  const refused = await invoke(app, 'travel', 'searchFlights', FLIGHTS, { 'x-api-key': USER_KEY })
  t.equal(refused.statusCode, 422)
  t.match(refused.json(), {
    statusCode: 422,
    code: 'AMK_MODEL_UNPRICED',
    message: new RegExp(`${UNPRICED}.*LLM_PRICING`),
    requestId: String,
    details: { model: UNPRICED }
  })
  t.equal(server.requests.length, 0, 'the provider was not called')
  t.equal(
    (await invoke(app, 'travel', 'searchFlights', FLIGHTS, { 'x-api-key': ADMIN_KEY })).statusCode,
    200,
    'callers without a dollar budget still run it'
  )

  const priced = await buildApp(t, { env: { ...env, LLM_PRICING: `{"${UNPRICED}":{"input":1,"output":2}}` } })
  const res = await invoke(
    priced,
    'travel',
    'getVisaRequirements',
    { destination: 'Japan', nationality: 'EG' },
    { 'x-api-key': USER_KEY }
  )
  t.equal(res.statusCode, 200, 'priced by LLM_PRICING: allowed')
  t.ok(res.json().usage.costUsd > 0)
  t.equal(
    (await priced.inject({ method: 'GET', url: '/api/health', headers: { 'x-api-key': ADMIN_KEY } })).json().components
      .usage.status,
    'healthy'
  )
})

t.test('calls the provider rejected without output are recorded but not charged', async t => {
  const server = await gemini(t)
  const app = await buildApp(t, {
    // No retries: a retried 500 that then succeeds is a charged success, not this case.
    env: { GEMINI_API_KEY: 'k', GEMINI_BASE_URL: server.url, BUDGETS: '{"user":{"tokens":1000000}}', LLM_MAX_RETRIES: '0' }
  })
  for (const status of [400, 500]) {
    server.script.push({ status, message: `rejected with ${status}` })
    const res = await invoke(app, 'travel', 'searchFlights', { ...FLIGHTS, passengers: status / 100 }, {
      'x-api-key': USER_KEY
    })
    t.equal(res.statusCode, 502, `provider ${status}: 502`)
  }
  const rows = await app.db.query('SELECT status, input_tokens, output_tokens, cost_usd, estimated FROM usage_ledger')
  t.same(rows, Array(2).fill({ status: 'error', input_tokens: 0, output_tokens: 0, cost_usd: 0, estimated: false }))
  const me = (await app.inject({ method: 'GET', url: '/api/usage/me', headers: { 'x-api-key': USER_KEY } })).json()
  t.equal(me.totals.totalTokens, 0, 'nothing counted against the budget')
})

t.test('a cancelled stream: the trace carries the same estimated usage as the ledger', async t => {
  const server = await gemini(t)
  const app = await buildApp(t, { env: { GEMINI_API_KEY: 'k', GEMINI_BASE_URL: server.url } })
  server.script.push({ text: 'x'.repeat(4000), chunks: 20, stallAfter: 5 })
  const controller = new AbortController()
  let deltas = 0
  const call = app.agents.invoke({
    agent: 'travel',
    method: 'searchFlights',
    input: FLIGHTS,
    caller: null,
    signal: controller.signal,
    onDelta: () => { if (++deltas === 5) controller.abort() }
  })
  await t.rejects(call)
  const [row] = await app.db.query<{
    status: string
    input_tokens: number
    output_tokens: number
    cost_usd: number
    estimated: boolean
    trace_id: string
  }>('SELECT status, input_tokens, output_tokens, cost_usd, estimated, trace_id FROM usage_ledger')
  t.match(row, { status: 'cancelled', estimated: true })
  t.equal(row.output_tokens, (5 * 4000) / 20 / 4, 'the estimate is of the five deltas received (200 characters each)')
  t.ok(row.cost_usd > 0, 'and is charged')
  const [trace] = app.tracer.recent('travel')
  t.equal(trace.id, row.trace_id)
  t.same(trace.usage, {
    inputTokens: row.input_tokens,
    outputTokens: row.output_tokens,
    costUsd: row.cost_usd,
    estimated: true
  })
})

for (const buffer of ['memory', 'redis'] as const) {
  const skip = buffer === 'redis' ? needs('redis') : false
  t.test(
    `ledger writes hang (${buffer} buffer): the reply comes within the write timeout, the row lands once after recovery`,
    { skip },
    async t => {
      const db = await pglite()
      const parked: Array<() => void> = []
      let hang = false
      // Ledger writes arrive as bound INSERTs, or on PGlite through write() (EXECUTE of the prepared upsert).
      const stall = async (sql: string) => {
        if (hang && /^(INSERT INTO usage_ledger|EXECUTE usage_upsert)/.test(sql)) await new Promise<void>(resolve => parked.push(resolve))
      }
      const hanging: Database = {
        ...db,
        async query (sql, params) {
          await stall(sql)
          return db.query(sql, params)
        },
        async exec (sql) {
          await stall(sql)
          return db.exec(sql)
        },
        async write (sql) {
          await stall(sql)
          return db.write(sql)
        }
      }
      const prefix = redisPrefix()
      const env = {
        USAGE_WRITE_TIMEOUT_MS: '200',
        ...(buffer === 'redis' ? { REDIS_URL, REDIS_KEY_PREFIX: prefix } : {})
      }
      const app = await buildApp(t, { db: hanging, env })
      t.equal((await invoke(app, 'travel', 'searchFlights', FLIGHTS)).statusCode, 200, 'warm-up')
      hang = true
      const started = performance.now()
      const res = await Promise.race([
        invoke(app, 'travel', 'searchFlights', { ...FLIGHTS, to: 'Rome' }),
        new Promise<null>(resolve => setTimeout(() => resolve(null), 15_000))
      ])
      const ms = performance.now() - started
      t.equal(res?.statusCode, 200, `answered in ${Math.round(ms)} ms while the ledger INSERT hangs`)
      t.ok(ms < 5000, 'bounded by the write timeout (200 ms per write), not by the database')
      const health = (
        await app.inject({ method: 'GET', url: '/api/health', headers: { 'x-api-key': ADMIN_KEY } })
      ).json()
      t.match(health.components.usage, { status: 'degraded', details: { buffer, bufferDepth: Number } })
      t.ok(health.components.usage.details.bufferDepth >= 1, 'the buffered row shows in health')
      t.match(await app.meters.registry.metrics(), /usage_buffer_depth [1-9]/)
      if (app.redis) t.ok((await app.redis.llen(`${prefix}usage-buffer`)) >= 1, 'the row waits in the Redis list')
      hang = false
      for (const resume of parked.splice(0)) resume()
      await app.usageLedger.flush()
      const rows = await db.query<{ status: string }>("SELECT status FROM usage_ledger WHERE status <> 'pending'")
      t.equal(rows.length, 2, 'both calls settled once')
      t.equal(app.usageLedger.depth(), 0)
      if (app.redis) t.equal(await app.redis.llen(`${prefix}usage-buffer`), 0, 'the Redis list is drained')
    }
  )
}

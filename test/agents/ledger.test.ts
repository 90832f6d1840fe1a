// Acceptance 5: one usage-ledger row per provider call, matching the usage the provider reported, priced
// from the table (here overridden with LLM_PRICING), on PGlite and on PostgreSQL; the Prometheus metrics
// agree with the same figures; stream/run ids and time-to-first-token for streamed calls.
import t from 'tap'
import { startGeminiServer } from '../fixtures/gemini-server.js'
import { needs, postgresDatabase, type BuildOptions } from '../support.js'
import { buildApp, invoke, modelAnswer, USER_KEY } from './support.js'

const PRICING = '{"gemini-2.5-flash":{"input":2,"output":4},"gemini-2.5-pro":{"input":10,"output":20}}'

type Row = {
  caller_id: string,
  caller_type: string,
  role: string,
  agent: string,
  method: string,
  model: string,
  input_tokens: number,
  output_tokens: number,
  cost_usd: number,
  status: string,
  duration_ms: number,
  estimated: boolean,
  trace_id: string,
  stream_id: string | null,
  run_id: string | null
}

function metric (text: string, name: string, labels: string): number {
  const line = text.split('\n').find(l => l.startsWith(`${name}{${labels}}`))
  return line ? Number(line.split(' ').at(-1)) : NaN
}

const backends = [
  { name: 'pglite', skip: false as const, options: async (): Promise<BuildOptions> => ({}) },
  {
    name: 'postgres',
    skip: needs('postgres'),
    options: async (): Promise<BuildOptions> => ({ db: null, env: { DATABASE_URL: await postgresDatabase() } })
  }
]

for (const backend of backends) {
  t.test(
    `${backend.name}: ledger rows and metrics match the provider's usage; cost from the overridden price table`,
    { skip: backend.skip },
    async t => {
      const gemini = await startGeminiServer()
      t.teardown(() => gemini.close())
      gemini.respond = request => ({
        ...modelAnswer(request),
        usage:
          request.model === 'gemini-2.5-pro'
            ? { input: 2000, output: 1000, thoughts: 250 }
            : { input: 1000, output: 500 }
      })
      const options = await backend.options()
      const app = await buildApp(t, {
        ...options,
        env: { GEMINI_API_KEY: 'k', GEMINI_BASE_URL: gemini.url, LLM_PRICING: PRICING, ...options.env }
      })
      t.equal(app.db.kind, backend.name)
      const me = (await app.inject({ url: '/api/auth/me', headers: { 'x-api-key': USER_KEY } })).json()

      const flights = await app.inject({
        method: 'POST',
        url: '/api/agents/travel/searchFlights',
        headers: { 'x-api-key': USER_KEY },
        payload: { from: 'Cairo', to: 'Paris', date: '2030-05-01' }
      })
      t.equal(flights.statusCode, 200)
      t.same(flights.json().usage, { inputTokens: 1000, outputTokens: 500, costUsd: 0.004, model: 'gemini-2.5-flash' })
      const ideas = await invoke(app, 'innovation', 'generateIdeas', { industry: 'fintech', count: 2 })
      t.same(
        ideas.json().usage,
        { inputTokens: 2000, outputTokens: 1250, costUsd: 0.045, model: 'gemini-2.5-pro' },
        'thinking tokens billed as output'
      )
      await invoke(app, 'travel', 'searchFlights', { from: 'Cairo', to: 'Paris', date: '2030-05-01' }) // a cache hit: no row

      const rows = await app.db.query<Row>('SELECT * FROM usage_ledger ORDER BY id')
      t.equal(rows.length, 2, 'one row per provider call, none for the cache hit')
      t.match(rows[0], {
        caller_id: me.id,
        caller_type: 'api-key',
        role: 'user',
        agent: 'travel',
        method: 'searchFlights',
        model: 'gemini-2.5-flash',
        input_tokens: 1000,
        output_tokens: 500,
        cost_usd: 0.004,
        status: 'success',
        estimated: false,
        trace_id: flights.json().traceId,
        stream_id: null,
        run_id: null
      })
      t.type(rows[0].duration_ms, 'number')
      t.match(rows[1], {
        caller_type: 'api-key',
        role: 'admin',
        agent: 'innovation',
        method: 'generateIdeas',
        model: 'gemini-2.5-pro',
        input_tokens: 2000,
        output_tokens: 1250,
        cost_usd: 0.045
      })

      const text = await app.meters.registry.metrics()
      t.equal(metric(text, 'llm_tokens_used_total', 'model="gemini-2.5-flash",agent="travel",type="input"'), 1000)
      t.equal(metric(text, 'llm_tokens_used_total', 'model="gemini-2.5-flash",agent="travel",type="output"'), 500)
      t.equal(metric(text, 'llm_tokens_used_total', 'model="gemini-2.5-pro",agent="innovation",type="output"'), 1250)
      t.equal(metric(text, 'llm_cost_dollars_total', 'model="gemini-2.5-flash",agent="travel"'), 0.004)
      t.equal(metric(text, 'llm_cost_dollars_total', 'model="gemini-2.5-pro",agent="innovation"'), 0.045)
      t.equal(metric(text, 'llm_calls_total', 'model="gemini-2.5-flash",agent="travel",status="success"'), 1)
      t.equal(metric(text, 'llm_call_duration_seconds_count', 'model="gemini-2.5-flash",agent="travel"'), 1)
      t.equal(
        metric(text, 'agent_executions_total', 'agent="travel",method="searchFlights",status="success"'),
        2,
        'cached invocations count as executions'
      )
      const totals = await app.db.query<{ tokens: number; cost: number }>(
        'SELECT sum(input_tokens + output_tokens)::int8 AS tokens, sum(cost_usd) AS cost FROM usage_ledger'
      )
      t.same(totals, [{ tokens: 4750, cost: 0.049 }])
    }
  )
}

t.test('streamed calls: deltas forwarded, stream and run ids in the ledger, time to first token observed', async t => {
  const gemini = await startGeminiServer(request => ({
    ...modelAnswer(request),
    usage: { input: 40, output: 60 },
    chunks: 6
  }))
  t.teardown(() => gemini.close())
  const app = await buildApp(t, { env: { GEMINI_API_KEY: 'k', GEMINI_BASE_URL: gemini.url } })
  const deltas: string[] = []
  const result = await app.agents.invoke({
    agent: 'content',
    method: 'researchTopic',
    input: { topic: 'Nubian architecture' },
    caller: null,
    onDelta: (delta) => deltas.push(delta),
    streamId: 'stream-123',
    runId: '7c1d1a52-5f0e-4c1e-9d55-1d2e3f4a5b6c'
  })
  t.ok(gemini.requests[0].stream, 'the provider was asked to stream')
  t.ok(deltas.length >= 5)
  t.same(JSON.parse(deltas.join('')).topic, 'Nubian architecture')
  t.same(result.usage, {
    inputTokens: 40,
    outputTokens: 60,
    costUsd: (40 * 1.25 + 60 * 10) / 1e6,
    model: 'gemini-2.5-pro'
  })
  const [row] = await app.db.query<Row>('SELECT * FROM usage_ledger')
  t.match(row, {
    caller_id: 'anonymous',
    caller_type: 'anonymous',
    stream_id: 'stream-123',
    run_id: '7c1d1a52-5f0e-4c1e-9d55-1d2e3f4a5b6c',
    input_tokens: 40,
    output_tokens: 60
  })
  const text = await app.meters.registry.metrics()
  t.equal(metric(text, 'llm_time_to_first_token_seconds_count', 'model="gemini-2.5-pro",agent="content"'), 1)
})

t.test('offline calls are free and labelled offline in the ledger', async t => {
  const app = await buildApp(t)
  const res = await invoke(app, 'content', 'generateSocialPosts', { topic: 'Felucca rides in Aswan' })
  const [row] = await app.db.query<Row>('SELECT * FROM usage_ledger')
  t.match(row, {
    model: 'offline',
    cost_usd: 0,
    input_tokens: res.json().usage.inputTokens,
    output_tokens: res.json().usage.outputTokens,
    status: 'success'
  })
})

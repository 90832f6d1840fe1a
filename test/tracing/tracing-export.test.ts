// Acceptance (issue 5, points 3 and 4): agent calls are exported through the real langsmith client to
// a local stand-in of the LangSmith API as run trees (agent run → LLM run, tokens), redacted; runs
// still buffered at shutdown are flushed by app.close(); with the endpoint down, calls still succeed.
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { build, freePort } from '../support.js'
import { startLangSmithServer, type ReceivedRun } from '../fixtures/langsmith-server.js'
import { MANAGEMENT_ENV, flight, get, invoke, visa } from '../routes/support.js'

const LS_KEY = 'lsv2_pt_management_test_key'
const PRIVATE = { contact: 'jane.doe@example.com', card: '4111 1111 1111 1111', phone: '+1 415 555 0199' }

async function withLangSmith (t: Test) {
  const langsmith = await startLangSmithServer({ apiKey: LS_KEY })
  t.teardown(() => langsmith.close())
  const env = {
    ...MANAGEMENT_ENV,
    LANGSMITH_API_KEY: LS_KEY,
    LANGSMITH_ENDPOINT: langsmith.url,
    LANGSMITH_PROJECT: 'amk-acceptance'
  }
  return { langsmith, env }
}

const byName = (runs: ReceivedRun[], name: string) => runs.filter(r => r.name === name)

t.test('an agent call becomes a run tree with its LLM run, tokens, and no personal data', async t => {
  const { langsmith, env } = await withLangSmith(t)
  const app = await build(t, { env })
  t.equal(app.tracer.exporting, true)
  const res = await invoke(app, 'travel', 'searchFlights', flight('Paris', { context: { traveler: PRIVATE } }))
  t.equal(res.statusCode, 200)
  const reply = res.json()
  t.equal(await app.tracer.flush(5000), true)

  const runs = [...langsmith.runs.values()]
  t.equal(runs.length, 2)
  const [agentRun] = byName(runs, 'travel.searchFlights')
  const llmRun = runs.find(r => r.run_type === 'llm')!
  t.match(agentRun, {
    run_type: 'chain',
    session_name: 'amk-acceptance',
    extra: {
      metadata: {
        trace_id: reply.traceId,
        agent: 'travel',
        operation: 'searchFlights',
        cached: false,
        status: 'success'
      }
    }
  })
  t.equal(agentRun.parent_run_id, undefined, 'the agent run is the root')
  t.equal(llmRun.parent_run_id, agentRun.id, 'the LLM run is its child')
  t.equal(llmRun.trace_id, agentRun.id)
  t.equal(llmRun.name, 'offline')
  t.same(llmRun.outputs?.usage_metadata, {
    input_tokens: reply.usage.inputTokens,
    output_tokens: reply.usage.outputTokens,
    total_tokens: reply.usage.inputTokens + reply.usage.outputTokens,
    total_cost: reply.usage.costUsd
  })
  const exported = JSON.stringify(runs)
  t.notMatch(exported, /jane\.doe@example\.com/, 'email redacted')
  t.notMatch(exported, /4111 1111 1111 1111/, 'card number redacted')
  t.notMatch(exported, /415 555 0199/, 'phone redacted')
  t.match(JSON.stringify(agentRun.inputs), /\[EMAIL\].*\[CARD\]/, 'the agent run inputs carry the placeholders')
  t.match(JSON.stringify(llmRun.inputs), /\[EMAIL\]/, 'so does the prompt of the LLM run')
  t.equal(JSON.stringify(agentRun.inputs).includes('Paris'), true, 'the rest of the input is kept')
  t.ok(langsmith.requests.some(r => r.path === '/runs/multipart' && r.apiKey === LS_KEY))
})

t.test('composite calls and runs recorded by other plugins nest as trees', async t => {
  const { langsmith, env } = await withLangSmith(t)
  const app = await build(t, { env })
  const pkg = await invoke(app, 'travel', 'createCompletePackage', {
    destination: 'Lisbon',
    from: 'Cairo',
    date: '2027-06-01',
    duration: 4,
    travelers: 2,
    budget: 3000,
    interests: ['food'],
    nationality: 'Egyptian'
  })
  const runId = app.tracer.newId()
  const startTime = Date.now()
  const result = await app.agents.invoke({
    agent: 'travel',
    method: 'getVisaRequirements',
    input: visa('Japan'),
    caller: null,
    parentTraceId: runId
  })
  app.tracer.recordRun({
    id: runId,
    name: 'workflow.visa-check',
    runType: 'chain',
    operation: 'sequential',
    startTime,
    endTime: Date.now(),
    inputs: { steps: 1 },
    outputs: { ok: true }
  })
  await app.tracer.flush(5000)
  const runs = [...langsmith.runs.values()]

  const [workflow] = byName(runs, 'workflow.visa-check')
  const visaRun = runs.find(r => r.extra?.metadata?.trace_id === result.traceId)!
  t.equal(visaRun.name, 'travel.getVisaRequirements')
  t.equal(visaRun.parent_run_id, workflow.id, 'the agent call nests under the workflow run')
  t.equal(runs.find(r => r.parent_run_id === visaRun.id)?.run_type, 'llm')
  t.equal((await get(app, '/api/agents/travel/traces')).json().traces[0].parentId, runId)
  t.equal(app.tracer.recent('workflow')[0].id, runId, 'a workflow run is listed under its name prefix')

  if (pkg.statusCode === 200) {
    const [root] = byName(runs, 'travel.createCompletePackage')
    const children = runs.filter(r => r.parent_run_id === root.id)
    t.ok(children.length >= 4, `${children.length} sub-calls under createCompletePackage`)
    t.ok(children.every(c => c.trace_id === root.id && c.dotted_order?.startsWith(root.dotted_order!)))
  } else {
    t.fail(`createCompletePackage failed: ${pkg.body}`)
  }
})

t.test('runs still buffered at shutdown are flushed by app.close()', async t => {
  const { langsmith, env } = await withLangSmith(t)
  const app: FastifyInstance = await build(t, { env })
  for (const to of ['Paris', 'Rome', 'Madrid']) { t.equal((await invoke(app, 'travel', 'searchFlights', flight(to))).statusCode, 200) }
  t.equal(langsmith.runs.size, 0, 'nothing sent yet: the client batches in the background')
  await app.close()
  t.equal(langsmith.runs.size, 6, 'three agent runs and three LLM runs arrived during close')
})

t.test('with the LangSmith endpoint down, calls succeed and shutdown gives up after its timeout', async t => {
  const port = await freePort()
  const logs: string[] = []
  const env = {
    ...MANAGEMENT_ENV,
    LANGSMITH_API_KEY: LS_KEY,
    LANGSMITH_ENDPOINT: `http://127.0.0.1:${port}`,
    LANGSMITH_FLUSH_TIMEOUT_MS: '300'
  }
  const app = await build(t, { env, logs })
  for (let i = 0; i < 5; i++) {
    const res = await invoke(app, 'travel', 'getVisaRequirements', visa(`Country${'ABCDE'[i]}`))
    t.equal(res.statusCode, 200, `call ${i + 1}`)
  }
  const traces = (await get(app, '/api/agents/travel/traces')).json()
  t.equal(traces.count, 5, 'traces are still kept in memory')
  await app.close()
  t.ok(logs.some(line => line.includes('LangSmith flush did not finish')), 'the dropped flush is logged')
})

// The LangSmith exporter against a local server speaking LangSmith's HTTP protocol (through the langsmith
// client): run trees whatever order children arrive in, errors and workflow nesting, flushing on close,
// per-tree sampling, and an endpoint that is down costing callers nothing.
import t, { type Test } from 'tap'
import { LangSmithExporter, type ExporterOptions } from '../../src/tracing/langsmith-exporter.js'
import type { RunRecord } from '../../src/tracing/types.js'
import { startLangSmithServer, type StandInOptions } from '../fixtures/langsmith-server.js'
import { freePort } from '../support.js'

const API_KEY = 'lsv2_pt_test'

async function setup (t: Test, server: StandInOptions = {}, over: Partial<ExporterOptions> = {}) {
  const langsmith = await startLangSmithServer({ apiKey: API_KEY, ...server })
  t.teardown(() => langsmith.close())
  const warnings: string[] = []
  const exporter = new LangSmithExporter({
    apiUrl: langsmith.url,
    apiKey: API_KEY,
    projectName: 'amk-test',
    sampleRate: 1,
    log: { warn: (_o, msg) => warnings.push(msg) },
    ...over
  })
  t.teardown(() => exporter.close(1000))
  return { langsmith, exporter, warnings }
}

const agentRun = (id: string, over: Partial<RunRecord> = {}): RunRecord => ({
  id,
  name: 'travel.searchFlights',
  runType: 'chain',
  agent: 'travel',
  operation: 'searchFlights',
  startTime: 1_760_000_000_000,
  endTime: 1_760_000_000_120,
  inputs: { from: 'CAI', to: 'JFK', contact: 'jane@example.com', payment: '4111 1111 1111 1111' },
  outputs: { output: { flights: 2 } },
  ...over
})
const llmRun = (id: string, parentId: string, over: Partial<RunRecord> = {}): RunRecord => ({
  id,
  parentId,
  name: 'gemini-2.5-flash',
  runType: 'llm',
  startTime: 1_760_000_000_010,
  endTime: 1_760_000_000_110,
  inputs: { messages: [{ role: 'user', content: 'Flights for jane@example.com, card 4111 1111 1111 1111' }] },
  outputs: { output: { flights: 2 } },
  usage: { inputTokens: 120, outputTokens: 45, costUsd: 0.0001485, model: 'gemini-2.5-flash' },
  ...over
})

for (const mode of [
  { name: 'multipart', server: {} },
  { name: 'multipart+gzip', server: { gzip: true } },
  { name: 'batch JSON', server: { multipart: false } }
]) {
  t.test(`a child recorded before its parent is exported as a run tree (${mode.name})`, async t => {
    const { langsmith, exporter } = await setup(t, mode.server)
    exporter.export(llmRun('llm-1', 'call-1'))
    t.equal(exporter.waiting, 1, "queued: nothing is built on the caller's turn")
    await new Promise(resolve => setImmediate(resolve))
    t.equal(exporter.waiting, 1, 'the LLM run waits for its agent run')
    t.equal(exporter.counts.exported, 0)
    exporter.export(agentRun('call-1'))
    await new Promise(resolve => setImmediate(resolve))
    t.equal(exporter.waiting, 0)
    t.equal(exporter.counts.exported, 2)
    t.equal(await exporter.flush(5000), true)
    const runs = [...langsmith.runs.values()]
    t.equal(runs.length, 2)
    const parent = runs.find(r => r.run_type === 'chain')!
    const child = runs.find(r => r.run_type === 'llm')!
    t.match(parent, {
      name: 'travel.searchFlights',
      session_name: 'amk-test',
      trace_id: parent.id,
      extra: { metadata: { trace_id: 'call-1', agent: 'travel', status: 'success' } }
    })
    t.equal(parent.parent_run_id, undefined)
    t.match(child, {
      name: 'gemini-2.5-flash',
      parent_run_id: parent.id,
      trace_id: parent.id,
      extra: { metadata: { ls_model_name: 'gemini-2.5-flash' } }
    })
    t.ok(child.dotted_order?.startsWith(`${parent.dotted_order}.`), 'dotted order nests the child')
    t.same(child.outputs?.usage_metadata, {
      input_tokens: 120,
      output_tokens: 45,
      total_tokens: 165,
      total_cost: 0.0001485
    })
    const exported = JSON.stringify(runs.map(r => [r.inputs, r.outputs]))
    t.notMatch(exported, /jane@example\.com/, 'email redacted')
    t.notMatch(exported, /4111 1111 1111 1111/, 'card redacted')
    t.match(exported, /\[EMAIL\]/)
    t.match(exported, /\[CARD\]/)
    t.ok(
      langsmith.requests.every(r => r.apiKey === API_KEY),
      'the API key is sent'
    )
    const paths = new Set(langsmith.requests.map(r => r.path))
    t.ok(paths.has(mode.name === 'batch JSON' ? '/runs/batch' : '/runs/multipart'), [...paths].join(','))
  })
}

t.test('errors, nesting under a workflow run, and a child arriving after its parent', async t => {
  const { langsmith, exporter } = await setup(t)
  exporter.export(
    agentRun('call-2', {
      parentId: 'wf-1',
      error: { code: 'AMK_LLM_UNAVAILABLE', message: 'provider down' },
      status: 'error'
    })
  )
  exporter.export({
    id: 'wf-1',
    name: 'workflow.trip-package',
    runType: 'chain',
    startTime: 1_760_000_000_000,
    endTime: 1_760_000_000_500
  })
  exporter.export(llmRun('llm-late', 'wf-1'))
  await exporter.flush(5000)
  const runs = [...langsmith.runs.values()]
  const wf = runs.find(r => r.name === 'workflow.trip-package')!
  const call = runs.find(r => r.name === 'travel.searchFlights')!
  t.equal(call.parent_run_id, wf.id)
  t.equal(call.error, 'AMK_LLM_UNAVAILABLE: provider down')
  t.equal(runs.find(r => r.run_type === 'llm')!.parent_run_id, wf.id)
})

t.test('runs still buffered are sent by close(), orphans as roots', async t => {
  const { langsmith, exporter } = await setup(t)
  exporter.export(agentRun('call-3'))
  exporter.export(llmRun('llm-orphan', 'never-recorded'))
  t.equal(langsmith.runs.size, 0, 'nothing sent synchronously')
  t.equal(await exporter.close(5000), true)
  t.equal(langsmith.runs.size, 2)
  const orphan = [...langsmith.runs.values()].find(r => r.run_type === 'llm')!
  t.equal(orphan.parent_run_id, undefined)
  t.equal(orphan.extra?.metadata?.missing_parent_id, 'never-recorded')
  exporter.export(agentRun('after-close'))
  t.equal(exporter.counts.dropped, 1)
})

t.test('sampling is decided per tree', async t => {
  const none = await setup(t, {}, { sampleRate: 0 })
  none.exporter.export(llmRun('l', 'p'))
  none.exporter.export(agentRun('p'))
  await none.exporter.close(2000)
  t.equal(none.langsmith.runs.size, 0)
  t.same(none.exporter.counts, { exported: 0, sampledOut: 2, orphaned: 0, dropped: 0 })

  const half = await setup(t, {}, { sampleRate: 0.5 })
  for (let i = 0; i < 200; i++) {
    half.exporter.export(llmRun(`l${i}`, `p${i}`))
    half.exporter.export(agentRun(`p${i}`))
  }
  await half.exporter.close(5000)
  const roots = [...half.langsmith.runs.values()].filter(r => r.run_type === 'chain')
  const children = [...half.langsmith.runs.values()].filter(r => r.run_type === 'llm')
  t.ok(roots.length > 60 && roots.length < 140, `${roots.length} of 200 trees sampled`)
  t.equal(children.length, roots.length, 'a sampled tree is exported whole')
})

t.test('with the endpoint down, export returns at once and close gives up after its timeout', async t => {
  const port = await freePort()
  const exporter = new LangSmithExporter({
    apiUrl: `http://127.0.0.1:${port}`,
    apiKey: API_KEY,
    projectName: 'p',
    sampleRate: 1,
    log: { warn () {} }
  })
  for (let i = 0; i < 20; i++) exporter.export(agentRun(`down-${i}`))
  t.equal(exporter.counts.exported, 0, 'export only queued')
  t.equal(await exporter.close(300), false, 'flush timed out instead of hanging')
  t.equal(exporter.counts.exported, 20)
})

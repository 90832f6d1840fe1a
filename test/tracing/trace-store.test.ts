// The in-process trace store: a bounded ring per key (newest first), LLM calls folded into their agent call,
// and stream and workflow runs kept under their agent.
import t from 'tap'
import { TraceStore, type TraceSummary } from '../../src/tracing/trace-store.js'
import { Tracer } from '../../src/tracing/tracer.js'
import type { InvocationRecord, LlmCallRecord } from '../../src/agents/types.js'

const summary = (id: string): TraceSummary => ({
  id,
  name: 'travel.searchFlights',
  runType: 'chain',
  operation: 'searchFlights',
  status: 'success',
  startTime: new Date(0).toISOString(),
  endTime: new Date(1).toISOString(),
  durationMs: 1,
  usage: { inputTokens: 0, outputTokens: 0, costUsd: 0 },
  llmCalls: 0
})
const silent = { warn () {} }

t.test('the ring keeps the last N per key, newest first, and overwrites the oldest', async t => {
  const store = new TraceStore(3)
  for (let i = 1; i <= 5; i++) store.add('travel', summary(`t${i}`))
  store.add('content', summary('c1'))
  t.same(store.recent('travel', 10).map(s => s.id), ['t5', 't4', 't3'])
  t.same(store.recent('travel', 2).map(s => s.id), ['t5', 't4'])
  t.equal(store.size('travel'), 3)
  t.same(store.recent('content').map(s => s.id), ['c1'])
  t.same(store.recent('innovation'), [])
  store.clear('travel')
  t.equal(store.size('travel'), 0)
  t.equal(store.size('content'), 1)
  t.throws(() => new TraceStore(0))
})

t.test('a full buffer of 1,000 stays at 1,000', async t => {
  const store = new TraceStore(1000)
  for (let i = 0; i < 2500; i++) store.add('travel', summary(`t${i}`))
  const recent = store.recent('travel', 5000)
  t.equal(recent.length, 1000)
  t.equal(recent[0].id, 't2499')
  t.equal(recent[999].id, 't1500')
})

const caller = { id: 'user-1', kind: 'api-key' as const, role: 'user' as const }

function llm (traceId: string, over: Partial<LlmCallRecord> = {}): LlmCallRecord {
  return {
    traceId,
    agent: 'travel',
    method: 'searchFlights',
    model: 'offline',
    caller,
    usage: { inputTokens: 100, outputTokens: 40 },
    costUsd: 0.002,
    status: 'success',
    startedAt: 1_000,
    durationMs: 30,
    timeToFirstTokenMs: 12,
    prompt: { system: 'sys', prompt: 'find flights for a@b.io' },
    output: { flights: [] },
    ...over
  }
}

function invocation (traceId: string, over: Partial<InvocationRecord> = {}): InvocationRecord {
  return {
    traceId,
    agent: 'travel',
    method: 'searchFlights',
    caller,
    input: { from: 'CAI', to: 'JFK' },
    output: { flights: [] },
    status: 'success',
    cached: false,
    usage: { inputTokens: 100, outputTokens: 40, costUsd: 0.002, model: 'offline' },
    startedAt: 990,
    durationMs: 45,
    ...over
  }
}

t.test('the tracer folds LLM calls into the agent call summary', async t => {
  const tracer = new Tracer({ store: new TraceStore(10), log: silent })
  t.equal(tracer.exporting, false)
  tracer.onLlmCall(llm('a'))
  tracer.onLlmCall(llm('a', { startedAt: 1_040, timeToFirstTokenMs: 20 }))
  tracer.onInvocation(
    invocation('a', { usage: { inputTokens: 200, outputTokens: 80, costUsd: 0.004, model: 'offline' } })
  )
  tracer.onInvocation(invocation('b', { cached: true, durationMs: 1 }))
  tracer.onInvocation(
    invocation('c', {
      status: 'error',
      error: { code: 'AMK_LLM_UNAVAILABLE', message: 'provider down' },
      output: undefined
    })
  )
  const [c, b, a] = tracer.recent('travel', 10)
  t.match(a, {
    id: 'a',
    name: 'travel.searchFlights',
    runType: 'chain',
    agent: 'travel',
    operation: 'searchFlights',
    model: 'offline',
    status: 'success',
    cached: false,
    durationMs: 45,
    llmCalls: 2,
    timeToFirstTokenMs: 12,
    callerId: 'user-1',
    usage: { inputTokens: 200, outputTokens: 80, costUsd: 0.004 }
  })
  t.equal(a.startTime, new Date(990).toISOString())
  t.match(b, { id: 'b', cached: true, llmCalls: 0, usage: { inputTokens: 0, outputTokens: 0, costUsd: 0 } })
  t.match(c, { id: 'c', status: 'error', error: { code: 'AMK_LLM_UNAVAILABLE', message: 'provider down' } })
  t.equal(tracer.recent('travel').length, 3, 'LLM runs are not listed separately')
})

t.test('without an exporter, an LLM call is only counted: its prompt (rendered on read) is never read', async t => {
  const tracer = new Tracer({ store: new TraceStore(10), log: silent })
  let reads = 0
  const record = llm('p')
  const { prompt } = record
  Object.defineProperty(record, 'prompt', { get: () => { reads++; return prompt } })
  tracer.onLlmCall(record)
  tracer.onInvocation(invocation('p'))
  t.equal(reads, 0)
  t.match(tracer.recent('travel', 1)[0], { id: 'p', llmCalls: 1, timeToFirstTokenMs: 12 })
})

t.test('runs from streams and workflows are kept under their agent, or the first part of their name', async t => {
  const tracer = new Tracer({ store: new TraceStore(10), log: silent })
  const id = tracer.newId()
  t.match(id, /^[0-9a-f-]{36}$/)
  tracer.recordRun({
    id,
    name: 'stream.itinerary',
    runType: 'chain',
    agent: 'travel',
    operation: 'stream:itinerary',
    startTime: 0,
    endTime: 500,
    status: 'cancelled'
  })
  tracer.recordRun({
    id: 'w1',
    name: 'workflow.trip-package',
    runType: 'chain',
    startTime: 0,
    endTime: 900,
    error: 'step 2 failed'
  })
  t.match(tracer.recent('travel')[0], { id, operation: 'stream:itinerary', status: 'cancelled', durationMs: 500 })
  t.match(tracer.recent('workflow')[0], {
    id: 'w1',
    status: 'error',
    error: { code: 'ERROR', message: 'step 2 failed' }
  })
  t.equal(await tracer.flush(10), true)
  t.equal(await tracer.close(10), true)
})

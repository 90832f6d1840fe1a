// The framework-free engine with a scripted `invoke` (the agent service is exercised end to end in
// coordinator-routes.test.ts): references, context passing, onError, timeouts, concurrency, named
// aggregators, cancellation, events and usage totals, and the up-front refusals.
import t from 'tap'
import { Type } from 'typebox'
import type { AgentDefinition, InvokeResult } from '../../src/agents/types.js'
import { createCatalog } from '../../src/coordinator/catalog.js'
import { executePlan } from '../../src/coordinator/engine.js'
import { planWorkflow } from '../../src/coordinator/plan.js'
import type { EngineEvent, StepCall, WorkflowSpec } from '../../src/coordinator/types.js'

const method = (input: Record<string, ReturnType<typeof Type.String>>, extra = {}) => ({
  summary: 'test method',
  input: Type.Object({ ...input, context: Type.Optional(Type.Unknown()) }, { additionalProperties: false }),
  output: Type.Object({}),
  cacheTtl: 0,
  rateLimit: 10,
  prompt: () => ({ system: '', prompt: '' }),
  ...extra
})

const definitions = {
  travel: {
    name: 'travel',
    description: 'test',
    defaultModel: 'flash',
    rateLimit: 60,
    capabilities: [],
    methods: {
      plan: method({ destination: Type.String({ minLength: 1 }) }),
      book: method({ destination: Type.String({ minLength: 1 }), days: Type.String({ pattern: '^\\d+$' }) }),
      slow: method({}),
      broken: method({})
    }
  },
  content: {
    name: 'content',
    description: 'test',
    defaultModel: 'pro',
    rateLimit: 30,
    capabilities: [],
    methods: { write: method({ topic: Type.String({ minLength: 1 }) }) }
  }
} as unknown as Record<string, AgentDefinition>

const catalog = createCatalog(definitions)

interface Script { calls: StepCall[], aborted: string[], inFlight: number, maxInFlight: number }

function fakeInvoke (script: Script) {
  return async (call: StepCall): Promise<InvokeResult> => {
    script.calls.push(
      structuredClone({ index: call.index, agent: call.agent, method: call.method, input: call.input }) as StepCall
    )
    script.inFlight++
    script.maxInFlight = Math.max(script.maxInFlight, script.inFlight)
    try {
      const usage = { inputTokens: 10 + call.index, outputTokens: 5, costUsd: 0.001 * (call.index + 1), model: 'fake' }
      if (call.method === 'broken') {
        throw Object.assign(new Error('model answered nonsense'), {
          code: 'AMK_LLM_INVALID_OUTPUT',
          usage: { ...usage, outputTokens: 2 }
        })
      }
      if (call.method === 'slow') {
        await new Promise((_resolve, reject) => call.signal.addEventListener('abort', () => {
          script.aborted.push(`${call.agent}.${call.method}#${call.index}`)
          reject(
            Object.assign(new Error('aborted'), {
              code: 'AMK_CANCELLED',
              usage: { ...usage, outputTokens: 1, estimated: true }
            })
          )
        }, { once: true }))
      }
      await new Promise(resolve => setImmediate(resolve))
      call.onDelta?.('chunk-a')
      call.onDelta?.('chunk-b')
      const data = call.method === 'plan'
        ? { destination: call.input.destination, days: '3', stops: ['a', 'b'] }
        : { echo: call.input }
      return { data, usage, cached: false, durationMs: 1, traceId: `trace-${call.index}` }
    } finally {
      script.inFlight--
    }
  }
}

function setup (stepTimeoutMs = 5000) {
  const script: Script = { calls: [], aborted: [], inFlight: 0, maxInFlight: 0 }
  const deps = { invoke: fakeInvoke(script), catalog, stepTimeoutMs, abortGraceMs: 1000 }
  const run = (
    spec: WorkflowSpec,
    options: { signal?: AbortSignal; events?: EngineEvent[]; streamTokens?: boolean } = {}
  ) =>
    executePlan(planWorkflow(spec, catalog), deps, {
      signal: options.signal ?? new AbortController().signal,
      onEvent: e => options.events?.push(e),
      streamTokens: options.streamTokens
    })
  return { script, run }
}

t.test(
  "sequential: references resolve, the previous step's data is the context, the last data is the result",
  async t => {
    const { script, run } = setup()
    const out = await run({
      strategy: 'sequential',
      input: { destination: 'Lisbon' },
      steps: [
        { id: 'trip', agent: 'travel', method: 'plan' },
        {
          agent: 'travel',
          method: 'book',
          input: { destination: { $ref: 'steps.trip.data.destination' }, days: { $ref: 'steps.0.data.days' } }
        },
        {
          agent: 'content',
          method: 'write',
          input: { topic: { $ref: 'input.destination' }, context: { $ref: 'previous.data' } }
        }
      ]
    })
    t.equal(out.status, 'completed')
    t.same(
      script.calls.map(c => c.input),
      [
        { destination: 'Lisbon' },
        { destination: 'Lisbon', days: '3', context: { destination: 'Lisbon', days: '3', stops: ['a', 'b'] } },
        {
          topic: 'Lisbon',
          context: {
            echo: { destination: 'Lisbon', days: '3', context: { destination: 'Lisbon', days: '3', stops: ['a', 'b'] } }
          }
        }
      ]
    )
    t.same(out.result, { echo: script.calls[2].input })
    t.same(
      out.steps.map(s => [s.index, s.status, s.traceId]),
      [
        [0, 'completed', 'trace-0'],
        [1, 'completed', 'trace-1'],
        [2, 'completed', 'trace-2']
      ]
    )
    t.ok(out.steps.every(s => s.startedAt && s.finishedAt && s.durationMs >= 0))
  }
)

t.test('sequential onError: stop keeps the failure and skips the rest; continue runs the rest', async t => {
  const steps = [
    { agent: 'travel', method: 'plan', input: { destination: 'Rome' } },
    { agent: 'travel', method: 'broken', input: {} },
    { agent: 'content', method: 'write', input: { topic: 'Rome' } }
  ]
  const stop = setup()
  const stopped = await stop.run({ strategy: 'sequential', steps, onError: 'stop' })
  t.equal(stopped.status, 'failed')
  t.same(stopped.steps.map(s => s.status), ['completed', 'failed', 'skipped'])
  t.equal(stopped.steps[1].error?.code, 'AMK_LLM_INVALID_OUTPUT')
  t.same(
    stopped.steps[1].usage,
    { inputTokens: 11, outputTokens: 2, costUsd: 0.002, model: 'fake' },
    'the failed step reports what it spent'
  )
  t.equal(stopped.steps[2].error?.code, 'AMK_SKIPPED')
  t.equal(stop.script.calls.length, 2)
  t.equal(stopped.error?.code, 'AMK_LLM_INVALID_OUTPUT')
  t.same(stopped.error?.details, { failedSteps: [1] })

  const cont = setup()
  const continued = await cont.run({ strategy: 'sequential', steps, onError: 'continue' })
  t.same(continued.steps.map(s => s.status), ['completed', 'failed', 'completed'])
  t.equal(cont.script.calls.length, 3)
  t.notOk(Object.hasOwn(cont.script.calls[2].input, 'context'), 'no context from a failed step')
  t.equal(continued.status, 'failed')
})

t.test('a reference to a failed step fails the step at run time without calling the agent', async t => {
  const { script, run } = setup()
  const out = await run({
    strategy: 'sequential',
    onError: 'continue',
    steps: [
      { agent: 'travel', method: 'broken', input: {} },
      { agent: 'content', method: 'write', input: { topic: { $ref: 'steps.0.data.topic' } } },
      { agent: 'travel', method: 'plan', input: { destination: 'Oslo' } },
      { agent: 'travel', method: 'book', input: { destination: 'Oslo', days: { $ref: 'previous.data.stops' } } }
    ]
  })
  t.same(out.steps.map(s => s.status), ['failed', 'failed', 'completed', 'failed'])
  t.equal(out.steps[1].error?.code, 'AMK_VALIDATION')
  t.match(out.steps[1].error?.message, /step 0 \(travel.broken\) failed/)
  t.equal(out.steps[3].error?.code, 'AMK_VALIDATION', 'the resolved input is checked against the method schema')
  t.match(out.steps[3].error?.details, [{ field: 'steps.3.input.days' }])
  t.same(script.calls.map(c => c.method), ['broken', 'plan'])
})

t.test('parallel: all settle; a failing and a timing-out task; the timeout aborts the call', async t => {
  const { script, run } = setup()
  const out = await run({
    strategy: 'parallel',
    timeoutMs: 200,
    tasks: [
      { id: 'ok', agent: 'travel', method: 'plan', input: { destination: 'Paris' } },
      { id: 'bad', agent: 'travel', method: 'broken', input: {} },
      { id: 'late', agent: 'travel', method: 'slow', input: {} }
    ]
  })
  t.equal(out.status, 'failed')
  t.same(out.steps.map(s => [s.id, s.status]), [['ok', 'completed'], ['bad', 'failed'], ['late', 'timed_out']])
  t.equal(out.steps[2].error?.code, 'AMK_LLM_TIMEOUT')
  t.same(script.aborted, ['travel.slow#2'], 'the provider call saw the abort')
  t.same(out.steps[2].usage, { inputTokens: 12, outputTokens: 1, costUsd: 0.003, model: 'fake', estimated: true })
  t.same(out.result, { ok: { destination: 'Paris', days: '3', stops: ['a', 'b'] } })
  t.same(out.error?.details, { failedSteps: [1, 2] })
})

t.test('parallel concurrency is honoured', async t => {
  const { script, run } = setup()
  const tasks = Array.from({ length: 7 }, (_, i) => ({
    agent: 'travel',
    method: 'plan',
    input: { destination: `city-${i}` }
  }))
  const out = await run({ strategy: 'parallel', tasks, concurrency: 2 })
  t.equal(out.status, 'completed')
  t.equal(script.maxInFlight, 2)
  t.same(Object.keys(out.result as object), ['0', '1', '2', '3', '4', '5', '6'])
})

t.test('hierarchical: the master\'s data is each sub-agent\'s context; named aggregators', async t => {
  const spec = (aggregator: 'collect' | 'merge' | 'master-summary'): WorkflowSpec => ({
    strategy: 'hierarchical',
    aggregator,
    master: { id: 'lead', agent: 'travel', method: 'plan', input: { destination: 'Kyoto' } },
    subAgents: [
      { id: 'post', agent: 'content', method: 'write', input: { topic: { $ref: 'steps.lead.data.destination' } } },
      {
        agent: 'travel',
        method: 'book',
        input: { destination: { $ref: 'previous.data.destination' }, days: { $ref: 'steps.0.data.days' } }
      },
      { agent: 'travel', method: 'broken', input: {} }
    ]
  })
  const { script, run } = setup()
  const collected = await run(spec('collect'))
  const master = { destination: 'Kyoto', days: '3', stops: ['a', 'b'] }
  t.same(script.calls[1].input, { topic: 'Kyoto', context: master })
  t.same(collected.steps.map(s => s.role), ['master', 'sub-agent', 'sub-agent', 'sub-agent'])
  t.same(collected.result, {
    master,
    results: {
      post: { echo: { topic: 'Kyoto', context: master } },
      1: { echo: { destination: 'Kyoto', days: '3', context: master } }
    },
    failed: [{ key: '2', agent: 'travel', method: 'broken', status: 'failed', error: collected.steps[3].error }]
  })
  const merged = await run(spec('merge'))
  t.same(merged.result, { ...master, echo: { destination: 'Kyoto', days: '3', context: master } })
  const summary = await run(spec('master-summary'))
  t.match(summary.result, {
    summary: master,
    overview: 'travel.plan led; 2 of 3 sub-agents completed: content.write, travel.book'
  })

  const failing = await run({
    strategy: 'hierarchical',
    master: { agent: 'travel', method: 'broken', input: {} },
    subAgents: [{ agent: 'content', method: 'write', input: { topic: 'x' } }]
  })
  t.same(failing.steps.map(s => s.status), ['failed', 'skipped'])
  t.equal(failing.result, null)
})

t.test('cancel mid-run: the in-flight call is aborted, later steps are skipped, earlier results kept', async t => {
  const { script, run } = setup()
  const controller = new AbortController()
  const events: EngineEvent[] = []
  const pending = run({
    strategy: 'sequential',
    steps: [
      { agent: 'travel', method: 'plan', input: { destination: 'Porto' } },
      { agent: 'travel', method: 'slow', input: {} },
      { agent: 'content', method: 'write', input: { topic: 'Porto' } }
    ]
  }, { signal: controller.signal, events })
  while (!events.some(e => e.event === 'step-started' && e.data.index === 1)) { await new Promise(resolve => setImmediate(resolve)) }
  controller.abort(Object.assign(new Error('cancelled by the caller'), { code: 'AMK_CANCELLED' }))
  const out = await pending
  t.equal(out.status, 'cancelled')
  t.same(out.steps.map(s => s.status), ['completed', 'cancelled', 'skipped'])
  t.same(script.aborted, ['travel.slow#1'])
  t.same(out.error, { code: 'AMK_CANCELLED', message: 'cancelled by the caller' })
  t.same(out.result, { destination: 'Porto', days: '3', stops: ['a', 'b'] }, 'partial results are kept')
})

t.test('events come in order, tokens carry the agent path, per-step usage sums to the total', async t => {
  const { run } = setup()
  const events: EngineEvent[] = []
  const out = await run({
    strategy: 'sequential',
    onError: 'continue',
    steps: [
      { agent: 'travel', method: 'plan', input: { destination: 'Nice' } },
      { agent: 'travel', method: 'broken', input: {} },
      { agent: 'content', method: 'write', input: { topic: 'Nice' } }
    ]
  }, { events, streamTokens: true })
  t.same(events.map(e => `${e.event}:${'index' in e.data ? e.data.index : ''}`), [
    'step-started:0', 'token:0', 'token:0', 'step-completed:0',
    'step-started:1', 'step-failed:1',
    'step-started:2', 'token:2', 'token:2', 'step-completed:2'
  ])
  t.match(events[1].data, { path: 'travel.plan', chunk: 'chunk-a', seq: 0 })
  const finished = events
    .filter(e => e.event === 'step-completed' || e.event === 'step-failed')
    .map(e => e.data as { usage: { inputTokens: number; outputTokens: number; costUsd: number } })
  t.same(out.usage, {
    inputTokens: finished.reduce((sum, s) => sum + s.usage.inputTokens, 0),
    outputTokens: finished.reduce((sum, s) => sum + s.usage.outputTokens, 0),
    costUsd: finished.reduce((sum, s) => sum + s.usage.costUsd, 0)
  })
  t.equal(out.usage.inputTokens, 10 + 11 + 12)
})

t.test('refused up front (400 with every problem), nothing runs, nothing is polluted', async t => {
  const refuse = (spec: unknown) => {
    try {
      planWorkflow(spec as WorkflowSpec, catalog)
    } catch (error) {
      return error as { statusCode: number, code: string, details: Array<{ field: string, message: string }> }
    }
    throw new Error('expected a refusal')
  }
  const unknown = refuse({
    strategy: 'sequential',
    steps: [
      { agent: 'finance', method: 'x' },
      { agent: 'travel', method: 'fly' }
    ]
  })
  t.equal(unknown.statusCode, 400)
  t.equal(unknown.code, 'AMK_VALIDATION')
  t.match(unknown.details, [
    { field: 'steps.0.agent', message: /available: travel, content/ },
    { field: 'steps.1.method', message: /available: plan, book, slow, broken/ }
  ])

  const refs = refuse({
    strategy: 'sequential',
    input: { destination: 'Lima' },
    steps: [
      { agent: 'travel', method: 'plan', input: { destination: { $ref: 'constructor.prototype' } } },
      { agent: 'travel', method: 'plan', input: { destination: { $ref: 'steps.0.__proto__' } } },
      { agent: 'travel', method: 'plan', input: { destination: { $ref: 'input.missing' } } },
      { agent: 'travel', method: 'plan', input: { destination: { $ref: 'steps.5.data' } } },
      { agent: 'travel', method: 'plan', input: { destination: { $ref: 'process.exit', extra: 1 } } },
      { agent: 'travel', method: 'plan', input: { destination: { $ref: 'input.destination.toString' } } }
    ]
  })
  t.same(refs.details.map(d => d.field), [
    'steps.0.input.destination', 'steps.1.input.destination', 'steps.2.input.destination',
    'steps.3.input.destination', 'steps.4.input.destination.$ref', 'steps.5.input.destination'
  ])
  t.match(refs.details[0].message, /must start with input, steps, previous/)
  t.match(refs.details[1].message, /forbidden segment "__proto__"/)

  const first = refuse({
    strategy: 'parallel',
    tasks: [{ agent: 'travel', method: 'plan', input: { destination: { $ref: 'previous.data' } } }]
  })
  t.match(first.details, [{ field: 'tasks.0.input.destination', message: /only "input." paths/ }])

  const proto = refuse({
    strategy: 'sequential',
    steps: [{ agent: 'travel', method: 'plan', input: JSON.parse('{"destination":"x","__proto__":{"polluted":true}}') }]
  })
  t.match(proto.details, [{ field: 'steps.0.input.__proto__', message: 'is not allowed' }])

  let deep: unknown = 'x'
  for (let i = 0; i < 40; i++) deep = [deep]
  const nested = refuse({
    strategy: 'sequential',
    steps: [{ agent: 'content', method: 'write', input: { topic: deep } }]
  })
  t.match(nested.details, [{ message: /nested deeper than 32/ }])

  const literal = refuse({
    strategy: 'sequential',
    steps: [{ agent: 'travel', method: 'book', input: { destination: '', days: 'many', extra: true } }]
  })
  t.same(literal.details.map(d => d.field).sort(), [
    'steps.0.input.days',
    'steps.0.input.destination',
    'steps.0.input.extra'
  ])

  const aggregator = refuse({
    strategy: 'hierarchical',
    aggregator: 'eval',
    master: { agent: 'travel', method: 'plan', input: { destination: 'x' } },
    subAgents: []
  })
  t.match(aggregator.details, [
    { field: 'aggregator', message: 'unknown aggregator; valid: collect, merge, master-summary' }
  ])

  t.equal(({} as Record<string, unknown>).polluted, undefined)
  t.equal(Object.hasOwn(Object.prototype, 'polluted'), false)
})

t.test('function-looking strings are data: passed through, never evaluated', async t => {
  const { script, run } = setup()
  const code = '(() => { globalThis.pwned = true; return process.exit(1) })()'
  const out = await run({
    strategy: 'sequential',
    steps: [{ agent: 'content', method: 'write', input: { topic: code } }]
  })
  t.equal(out.status, 'completed')
  t.equal(script.calls[0].input.topic, code)
  t.equal((globalThis as Record<string, unknown>).pwned, undefined)
})

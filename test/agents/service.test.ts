// The agent service without Fastify: hooks (a budget hook may refuse a call; releases get the actual
// usage; observers that throw never fail a call), composite methods run their parts in parallel through
// the service (each traced under the parent), and a pre-aborted signal is a cancel.
import t from 'tap'
import { createAgentDefinitions, offlineBuilder } from '../../src/agents/index.js'
import { createAgentService } from '../../src/agents/service.js'
import type { InvocationRecord, LlmCallRecord } from '../../src/agents/types.js'
import { createMemoryCache } from '../../src/cache/memory-cache.js'
import { BudgetExceededError } from '../../src/errors.js'
import { createOfflineProvider } from '../../src/llm/offline.js'
import { createPricing } from '../../src/llm/pricing.js'
import type { GenerateRequest, LlmProvider } from '../../src/llm/types.js'
import { createUsageLedger } from '../../src/store/usage-ledger.js'
import { pglite, STORED_WRITES } from '../support.js'

const caller = { id: 'user:1', kind: 'user' as const, role: 'user' as const }

async function service (provider: LlmProvider = createOfflineProvider({ build: offlineBuilder() })) {
  const db = await pglite()
  const warnings: string[] = []
  const pricing = createPricing('{"offline":{"input":1,"output":2}}')
  const agents = createAgentService({
    definitions: createAgentDefinitions(),
    llm: { provider, modelFor: () => 'offline', price: (model, usage) => pricing.cost(model, usage) },
    cache: createMemoryCache({ maxEntries: 100 }),
    keyPrefix: 'test:',
    ledger: createUsageLedger(db, STORED_WRITES),
    log: { warn: (_details, message) => { warnings.push(message) } }
  })
  return { agents, db, warnings }
}

/** The offline provider, slowed down and counting how many calls run at once. */
function countingProvider () {
  const inner = createOfflineProvider({ build: offlineBuilder() })
  const stats = { inFlight: 0, maxInFlight: 0, calls: 0 }
  const provider: LlmProvider = {
    ...inner,
    async generate (request) {
      stats.calls++
      stats.maxInFlight = Math.max(stats.maxInFlight, ++stats.inFlight)
      await new Promise(resolve => setTimeout(resolve, 30))
      stats.inFlight--
      return inner.generate(request)
    }
  }
  return { provider, stats }
}

const FLIGHTS = { from: 'Cairo', to: 'Paris', date: '2030-05-01' }

t.test(
  'a beforeLlmCall hook that throws stops the call: no provider call, no ledger row, earlier reservations released',
  async t => {
    const { provider, stats } = countingProvider()
    const { agents, db } = await service(provider)
    const released: unknown[] = []
    agents.addHooks({
      async beforeLlmCall () {
        return {
          release: async actual => {
            released.push(actual)
          }
        }
      }
    })
    agents.addHooks({
      async beforeLlmCall (call) {
        if (call.caller?.id === 'user:1') throw new BudgetExceededError('daily token budget exhausted')
      }
    })
    await t.rejects(agents.invoke({ agent: 'travel', method: 'searchFlights', input: FLIGHTS, caller }), {
      code: 'AMK_BUDGET_EXCEEDED',
      statusCode: 429
    })
    t.equal(stats.calls, 0)
    t.same(await db.query('SELECT * FROM usage_ledger'), [])
    t.same(released, [{ tokens: 0, costUsd: 0 }])
  }
)

t.test('reservations are settled with the actual usage; hooks see estimates first', async t => {
  const { agents } = await service()
  const seen: Array<{ estimatedTokens: number, estimatedCostUsd: number, model: string }> = []
  const settled: Array<{ tokens: number, costUsd: number }> = []
  agents.addHooks({
    async beforeLlmCall (call) {
      seen.push(call)
      return { release: async (actual) => { settled.push(actual) } }
    }
  })
  const result = await agents.invoke({ agent: 'travel', method: 'searchFlights', input: FLIGHTS, caller })
  t.equal(seen.length, 1)
  t.ok(seen[0].estimatedTokens > 2048, 'prompt estimate plus the expected output')
  t.ok(seen[0].estimatedCostUsd > 0)
  t.same(settled, [{ tokens: result.usage.inputTokens + result.usage.outputTokens, costUsd: result.usage.costUsd }])
})

t.test('observers: records for every call and invocation; a throwing observer never fails the call', async t => {
  const { agents, warnings } = await service()
  const calls: LlmCallRecord[] = []
  const invocations: InvocationRecord[] = []
  agents.addHooks({
    onLlmCall: () => {
      throw new Error('broken stats')
    },
    onInvocation: () => {
      throw new Error('broken tracer')
    }
  })
  agents.addHooks({ onLlmCall: (r) => { calls.push(r) }, onInvocation: (r) => { invocations.push(r) } })
  const first = await agents.invoke({ agent: 'travel', method: 'searchFlights', input: FLIGHTS, caller })
  const second = await agents.invoke({ agent: 'travel', method: 'searchFlights', input: FLIGHTS, caller })
  t.equal(second.cached, true)
  t.equal(calls.length, 1, 'the cache hit made no LLM call')
  t.match(calls[0], {
    traceId: first.traceId,
    agent: 'travel',
    method: 'searchFlights',
    model: 'offline',
    status: 'success',
    caller
  })
  t.match(calls[0].prompt.prompt, /Cairo/)
  t.same(invocations.map(r => [r.cached, r.status]), [[false, 'success'], [true, 'success']])
  t.equal(warnings.filter(w => w.includes('hook failed')).length, 3, 'one LLM call and two invocations, each logged')
})

t.test('createCompletePackage: four methods in parallel, each traced under the package, usage summed', async t => {
  const { provider, stats } = countingProvider()
  const { agents, db } = await service(provider)
  const invocations: InvocationRecord[] = []
  agents.addHooks({ onInvocation: (r) => { invocations.push(r) } })
  const result = await agents.invoke({
    agent: 'travel',
    method: 'createCompletePackage',
    input: { destination: 'Petra', from: 'Amman', date: '2030-03-03', duration: 2, nationality: 'Egyptian' },
    caller
  })
  t.equal(stats.calls, 4)
  t.equal(stats.maxInFlight, 4, 'all four ran at the same time')
  const parts = invocations.filter(r => r.parentTraceId === result.traceId)
  t.same(parts.map(p => p.method).sort(), ['generateItinerary', 'getVisaRequirements', 'searchFlights', 'searchHotels'])
  const rows = await db.query<{ input_tokens: number; output_tokens: number }>(
    'SELECT input_tokens, output_tokens FROM usage_ledger'
  )
  t.equal(rows.length, 4)
  t.equal(result.usage.inputTokens, rows.reduce((n, r) => n + r.input_tokens, 0))
  t.equal(result.usage.outputTokens, rows.reduce((n, r) => n + r.output_tokens, 0))
  t.ok(result.usage.costUsd > 0)
  const data = result.data as { returnDate: string, visa: { nationality: string }, flights: unknown[] }
  t.equal(data.returnDate, '2030-03-05')
  t.equal(data.visa.nationality, 'Egyptian')
  t.ok(data.flights.length <= 3)

  // The parts are cached on their own: a second package reuses them without provider calls.
  const again = await agents.invoke({
    agent: 'travel',
    method: 'createCompletePackage',
    input: { destination: 'Petra', from: 'Amman', date: '2030-03-03', duration: 2, nationality: 'Egyptian' },
    caller,
    noCache: true
  })
  t.equal(again.cached, false)
  t.equal(stats.calls, 8, 'noCache passes down to the parts')
})

t.test('a signal aborted before the call is a cancel, recorded as such', async t => {
  const { agents } = await service()
  const invocations: InvocationRecord[] = []
  agents.addHooks({ onInvocation: (r) => { invocations.push(r) } })
  const controller = new AbortController()
  controller.abort()
  await t.rejects(
    agents.invoke({
      agent: 'content',
      method: 'researchTopic',
      input: { topic: 'Karnak' },
      caller,
      signal: controller.signal
    }),
    { code: 'AMK_CANCELLED' }
  )
  t.equal(invocations[0].status, 'cancelled')
})

t.test('the prompt: rendered once per call, and let go of once a stream has started answering', async t => {
  const definitions = createAgentDefinitions()
  const method = definitions.content.methods.researchTopic
  const render = method.prompt.bind(method)
  let renders = 0
  method.prompt = input => { renders++; return render(input) }
  const inner = createOfflineProvider({ build: offlineBuilder() })
  const seen: Array<{ request: GenerateRequest, rendersBefore: number, prompt: string, rendersAfter: number }> = []
  const note = (request: GenerateRequest) => {
    const rendersBefore = renders
    const prompt = request.prompt
    seen.push({ request, rendersBefore, prompt, rendersAfter: renders })
  }
  const provider: LlmProvider = {
    ...inner,
    generate: async request => { note(request); return inner.generate(request) },
    async * stream (request) {
      let first = true
      for await (const chunk of inner.stream(request)) {
        yield chunk // resumed once the caller has taken the delta
        if (first) note(request)
        first = false
      }
    }
  }
  const agents = createAgentService({
    definitions,
    llm: { provider, modelFor: () => 'offline', price: () => 0 },
    cache: createMemoryCache({ maxEntries: 10 }),
    keyPrefix: 'test:'
  })
  const calls: LlmCallRecord[] = []
  agents.addHooks({ onLlmCall: record => { calls.push(record) } })
  const input = { topic: 'Karnak by night' }

  await agents.invoke({ agent: 'content', method: 'researchTopic', input, caller, noCache: true })
  t.match(seen[0].prompt, 'Research "Karnak by night"')
  t.equal(seen[0].rendersAfter, seen[0].rendersBefore, 'the provider reads the prompt rendered for the call')
  t.equal(calls[0].prompt.prompt, seen[0].prompt, 'the trace gets the prompt the provider got')
  t.equal(renders, 1, 'one render for the whole call')

  seen.length = 0
  renders = 0
  await agents.invoke({ agent: 'content', method: 'researchTopic', input, caller, noCache: true, onDelta: () => {} })
  const [streamed] = seen
  t.equal(streamed.rendersAfter, streamed.rendersBefore + 1, 'after the first delta the request holds no prompt text')
  t.equal(streamed.prompt, calls[1].prompt.prompt, 'read later, it is rendered again, the same text')
  t.match(streamed.prompt, 'Research "Karnak by night"')
})

t.test("a failed invocation's error carries what it spent, out of sight of responses and logs", async t => {
  const inner = createOfflineProvider({ build: offlineBuilder() })
  const provider: LlmProvider = {
    ...inner,
    // Twice an answer that is not the method's schema: the repair fails too.
    generate: async request => ({ ...(await inner.generate(request)), text: '{"nope":1}', json: { nope: 1 } })
  }
  const { agents } = await service(provider)
  const error = await agents
    .invoke({ agent: 'content', method: 'researchTopic', input: { topic: 'Karnak' }, caller, noCache: true })
    .then(() => null, (e: unknown) => e as Error & { usage?: InvocationRecord['usage'] })
  t.match(error, { code: 'AMK_LLM_INVALID_OUTPUT' })
  t.match(error?.usage, { model: 'offline' }, 'both calls, the repair included')
  t.ok((error?.usage?.inputTokens ?? 0) > 0 && (error?.usage?.costUsd ?? 0) > 0)
  t.notOk(Object.keys(error ?? {}).includes('usage'), 'not enumerable')

  const refused = await agents
    .invoke({ agent: 'content', method: 'researchTopic', input: { topic: 42 }, caller })
    .then(() => null, (e: unknown) => e as Error & { usage?: unknown })
  t.equal(refused?.usage, undefined, 'nothing spent, nothing attached')
})

t.test(
  "a call's settlement is written while its answer is checked and cached; the invocation ends once it is stored",
  async t => {
    const db = await pglite()
    const ledger = createUsageLedger(db, STORED_WRITES)
    const events: string[] = []
    const gate = () => {
      let open!: () => void
      const opened = new Promise<void>(resolve => { open = resolve })
      return { opened, open }
    }
    let settlement = gate()
    const release = gate()
    const cache = createMemoryCache({ maxEntries: 10 })
    const offline = createOfflineProvider({ build: offlineBuilder() })
    let fail = false
    const provider: LlmProvider = {
      ...offline,
      generate: async request => {
        if (fail) throw new Error('upstream broke')
        return offline.generate(request)
      }
    }
    const agents = createAgentService({
      definitions: createAgentDefinitions(),
      llm: {
        provider,
        modelFor: () => 'offline',
        price: () => 0
      },
      cache: { ...cache, set: async (...args) => { events.push('cache set'); return cache.set(...args) } },
      keyPrefix: 'test:',
      ledger: {
        ...ledger,
        record: async row => {
          if (row.status === 'pending') return ledger.record(row)
          events.push('settlement started')
          await settlement.opened
          await ledger.record(row)
          events.push('settlement stored')
        }
      }
    })
    agents.addHooks({
      beforeLlmCall: async () => ({
        release: async () => {
          events.push('budget release started')
          await release.opened
        }
      })
    })
    /** Lets up to 50 turns of the event loop pass, fewer once `done` says so. */
    const turns = async (done: () => boolean) => {
      for (let turn = 0; turn < 50 && !done(); turn++) await new Promise(resolve => setImmediate(resolve))
    }

    let ended = false
    const invocation = agents.invoke({ agent: 'travel', method: 'searchFlights', input: FLIGHTS, caller, noCache: true })
      .finally(() => { ended = true })
    await turns(() => events.includes('cache set'))
    t.same(events, ['budget release started', 'settlement started', 'cache set'],
      'the budget release and the usage row are written together, while the answer is checked and cached')
    t.notOk(ended, 'the answer waits for them')
    release.open()
    await turns(() => ended)
    t.notOk(ended, 'and for the usage row too')
    settlement.open()
    const result = await invocation
    t.ok(result.data, 'then it answers')
    t.equal(events.at(-1), 'settlement stored', 'after the row was stored')
    const [row] = await db.query<{ status: string }>(
      'SELECT status FROM usage_ledger WHERE trace_id = $1', [result.traceId])
    t.equal(row.status, 'success')

    // A failed call the same way: its error reaches the caller once its row is stored.
    events.length = 0
    fail = true
    settlement = gate()
    let failed = false
    const failure = agents.invoke({ agent: 'travel', method: 'searchFlights', input: FLIGHTS, caller, noCache: true })
      .catch((error: Error) => { failed = true; return error })
    await turns(() => failed)
    t.notOk(failed, 'a failure waits for its usage row as well')
    settlement.open()
    t.match(await failure, { message: 'upstream broke' })
    t.same(events, ['budget release started', 'settlement started', 'settlement stored'])
  }
)

// The one abort signal per call (issue 16): invoke gives the call its own signal, which follows the
// caller's (with its reason) and shutdown, and leaves no listener on the caller's signal once the call
// ended; a caller's own controller is used instead, and a LazyAbortController is its own light signal: the
// provider gets it (undici takes it), and an AbortSignal is made only where an API requires one. An SSE
// connection's signal carries its end reason, not a DOMException.
import { getEventListeners } from 'node:events'
import { PassThrough } from 'node:stream'
import type { ServerResponse } from 'node:http'
import t from 'tap'
import { createAgentDefinitions, offlineBuilder } from '../../src/agents/index.js'
import { abortSignalOf, LazyAbortController, type CallSignal } from '../../src/agents/call-abort.js'
import { createAgentService } from '../../src/agents/service.js'
import { createMemoryCache } from '../../src/cache/memory-cache.js'
import { CancelledError } from '../../src/errors.js'
import { createOfflineProvider } from '../../src/llm/offline.js'
import type { LlmProvider } from '../../src/llm/types.js'
import { SseConnection } from '../../src/streams/connection.js'

const caller = { id: 'user:1', kind: 'user' as const, role: 'user' as const }
const input = { topic: 'Karnak' }

/** A provider that waits until its signal aborts, noting the signal it was given. */
function hangingProvider () {
  const seen: CallSignal[] = []
  const inner = createOfflineProvider({ build: offlineBuilder() })
  const provider: LlmProvider = {
    ...inner,
    async generate (request) {
      const signal = request.signal!
      seen.push(signal)
      await new Promise<void>(resolve => signal.addEventListener('abort', () => resolve(), { once: true }))
      throw new CancelledError('The request was cancelled')
    }
  }
  return { provider, seen }
}

function service (provider: LlmProvider = createOfflineProvider({ build: offlineBuilder() })) {
  return createAgentService({
    definitions: createAgentDefinitions(),
    llm: { provider, modelFor: () => 'offline', price: () => 0 },
    cache: createMemoryCache({ maxEntries: 10 }),
    keyPrefix: 'test:'
  })
}

t.test('a finished call leaves no listener on the caller signal', async t => {
  const agents = service()
  const controller = new AbortController()
  for (let i = 0; i < 3; i++) {
    await agents.invoke({ agent: 'content', method: 'researchTopic', input, caller, signal: controller.signal, noCache: true })
  }
  t.equal(getEventListeners(controller.signal, 'abort').length, 0)
})

t.test("the caller's abort reaches the provider with its reason, and stays a cancel", async t => {
  const { provider, seen } = hangingProvider()
  const agents = service(provider)
  const controller = new AbortController()
  const call = agents.invoke({ agent: 'content', method: 'researchTopic', input, caller, signal: controller.signal })
  while (seen.length === 0) await new Promise(resolve => setImmediate(resolve))
  t.not(seen[0], controller.signal, 'the call has its own signal')
  controller.abort('disconnect')
  await t.rejects(call, { code: 'AMK_CANCELLED' })
  t.equal(seen[0].reason, 'disconnect')
  t.equal(getEventListeners(controller.signal, 'abort').length, 0)
})

t.test('shutdown aborts a call whose caller is still there: 503 AMK_SHUTTING_DOWN', async t => {
  const { provider, seen } = hangingProvider()
  const agents = service(provider)
  const controller = new AbortController()
  const call = agents.invoke({ agent: 'content', method: 'researchTopic', input, caller, signal: controller.signal })
  while (seen.length === 0) await new Promise(resolve => setImmediate(resolve))
  t.equal(agents.abortInFlight(), 1)
  await t.rejects(call, { code: 'AMK_SHUTTING_DOWN' })
  t.equal(seen[0].reason, 'shutdown')
  t.equal(controller.signal.aborted, false)
  t.equal(getEventListeners(controller.signal, 'abort').length, 0)
})

t.test("a caller's own controller: the call runs on its signal and shutdown aborts it with 'shutdown'", async t => {
  const { provider, seen } = hangingProvider()
  const agents = service(provider)
  const controller = new AbortController()
  const call = agents.invoke({ agent: 'content', method: 'researchTopic', input, caller, signal: controller.signal, controller })
  while (seen.length === 0) await new Promise(resolve => setImmediate(resolve))
  t.equal(seen[0], controller.signal, 'no controller of its own')
  t.equal(agents.inFlight, 1, 'tracked')
  t.equal(agents.abortInFlight(), 1)
  await t.rejects(call, { code: 'AMK_SHUTTING_DOWN' }, 'a retry goes to another replica')
  t.equal(controller.signal.reason, 'shutdown')
  t.equal(agents.inFlight, 0)
})

t.test('a lazy controller is the signal the provider gets: no AbortSignal, aborted with the reason', async t => {
  const { provider, seen } = hangingProvider()
  const hanging = service(provider)
  const controller = new LazyAbortController()
  const call = hanging.invoke({ agent: 'content', method: 'researchTopic', input, caller, controller })
  while (seen.length === 0) await new Promise(resolve => setImmediate(resolve))
  t.equal(seen[0], controller, 'the controller itself')
  t.notOk(seen[0] instanceof AbortSignal, 'no AbortSignal (an EventTarget with two maps, about 0.7 KB) was made')
  controller.abort('disconnect')
  await t.rejects(call, { code: 'AMK_CANCELLED' })
  t.equal(seen[0].reason, 'disconnect')
  t.equal(hanging.inFlight, 0)
})

t.test('a lazy controller: listeners once, removable, none after the abort; the first reason stays', async t => {
  const controller = new LazyAbortController()
  const calls: string[] = []
  const first = () => calls.push('first')
  const removed = () => calls.push('removed')
  controller.addEventListener('abort', first)
  controller.addEventListener('abort', first) // added once, as on an EventTarget
  controller.addEventListener('abort', removed)
  controller.removeEventListener('abort', removed)
  t.equal(controller.signal, controller, 'its own signal')
  controller.abort('first')
  controller.abort('second')
  t.same(calls, ['first'], 'each listener once; a removed one not at all')
  t.equal(controller.aborted, true)
  t.equal(controller.reason, 'first')
  controller.addEventListener('abort', first)
  controller.abort('third')
  t.same(calls, ['first'], 'nothing is added after the abort')

  const early = new LazyAbortController()
  early.abort('gone')
  const real = abortSignalOf(early)
  t.ok(real instanceof AbortSignal)
  t.equal(real.aborted, true)
  t.equal(real.reason, 'gone', 'an AbortSignal made after the abort is aborted with its reason')
  const late = new LazyAbortController()
  const followed = abortSignalOf(late)
  t.equal(abortSignalOf(late), followed, 'one AbortSignal per controller')
  late.abort('now')
  t.equal(followed.reason, 'now', 'and it follows the abort')
  const plain = new AbortController().signal
  t.equal(abortSignalOf(plain), plain, 'an AbortSignal is its own')
})

t.test("a caller's own controller is untracked however the call ends: done, refused input, unknown method", async t => {
  const agents = service()
  const controller = new AbortController()
  const call = (method: string, callInput: Record<string, unknown>) =>
    agents.invoke({ agent: 'content', method, input: callInput, caller, signal: controller.signal, controller })
  const done = call('researchTopic', input)
  t.equal(agents.inFlight, 1, 'tracked while it runs')
  await done
  t.equal(agents.inFlight, 0, 'untracked once it answered')
  await t.rejects(call('researchTopic', { topic: 42 }), { code: 'AMK_VALIDATION' })
  t.equal(agents.inFlight, 0, 'untracked after a refused input')
  await t.rejects(call('noSuchMethod', input), { code: 'AMK_NOT_FOUND' })
  t.equal(agents.inFlight, 0, 'untracked after an unknown method')
})

t.test('an SSE connection aborts with its end reason', async t => {
  const fake = (): ServerResponse => {
    const res = new PassThrough() as unknown as ServerResponse
    return res
  }
  const ended = new SseConnection(fake(), 's1', 0)
  ended.end('finished')
  t.equal(ended.signal.aborted, true)
  t.equal(ended.signal.reason, 'finished')

  const res = fake()
  const closed = new SseConnection(res, 's2', 0)
  res.emit('close')
  t.equal(closed.signal.reason, 'client-closed')
})

// The Gemini provider on the real @google/genai SDK against the local Gemini server: request shape,
// usage (thinking tokens count as output), retries honouring Retry-After, pro → flash fallback, errors
// mapped to AMK_ codes, per-call timeout, and aborts that close the upstream socket — unary and streamed.
import t, { type Test } from 'tap'
import { createGeminiProvider, type GeminiOptions } from '../../src/llm/gemini.js'
import { startGeminiServer } from '../fixtures/gemini-server.js'
import type { GenerateRequest, StreamChunk } from '../../src/llm/types.js'

const SCHEMA = {
  type: 'object',
  properties: { answer: { type: 'string', maxLength: 20 } },
  required: ['answer'],
  additionalProperties: false
}

async function setup (t: Test, overrides: Partial<GeminiOptions> = {}) {
  const server = await startGeminiServer(() => ({ json: { answer: 'fine' }, usage: { input: 11, output: 7 } }))
  t.teardown(() => server.close())
  const events: Array<{ event: string, details: Record<string, unknown> }> = []
  const provider = createGeminiProvider({
    apiKey: 'k-123',
    baseUrl: server.url,
    flashModel: 'gemini-2.5-flash',
    proModel: 'gemini-2.5-pro',
    timeoutMs: 2000,
    retry: { maxRetries: 2, baseMs: 5, maxDelayMs: 2000 },
    onEvent: (event, details) => events.push({ event, details }),
    ...overrides
  })
  return { server, provider, events }
}

const ask = (extra: Partial<GenerateRequest> = {}): GenerateRequest => ({
  model: 'gemini-2.5-flash',
  system: 'You answer briefly.',
  prompt: 'Say fine about Paris',
  responseSchema: SCHEMA,
  ...extra
})

async function collect (stream: AsyncIterable<StreamChunk>) {
  const chunks: StreamChunk[] = []
  for await (const chunk of stream) chunks.push(chunk)
  return chunks
}

async function rejection (promise: Promise<unknown>) {
  try {
    await promise
  } catch (error) {
    return error as Error & { code: string; statusCode: number; details?: Record<string, unknown> }
  }
  throw new Error('expected a rejection')
}

t.test('generate: structured output request and usage from usageMetadata (thinking tokens are output)', async t => {
  const { server, provider } = await setup(t)
  server.script.push({ json: { answer: 'fine' }, usage: { input: 12, output: 30, thoughts: 8 } })
  const result = await provider.generate(ask({ temperature: 0.3 }))
  t.same(result.json, { answer: 'fine' })
  t.same(result.usage, { inputTokens: 12, outputTokens: 38 })
  t.equal(result.model, 'gemini-2.5-flash')
  const [request] = server.requests
  t.equal(request.model, 'gemini-2.5-flash')
  t.equal(request.stream, false)
  t.equal(request.prompt, 'Say fine about Paris')
  t.equal(request.system, 'You answer briefly.')
  t.same(request.body.generationConfig, {
    responseMimeType: 'application/json',
    responseJsonSchema: {
      type: 'object',
      properties: { answer: { type: 'string' } },
      required: ['answer'],
      additionalProperties: false
    },
    temperature: 0.3
  })
})

t.test('429 with Retry-After: waits as asked, then succeeds', async t => {
  const { server, provider, events } = await setup(t)
  server.script.push(
    { status: 429, retryAfter: '1' },
    { json: { answer: 'after wait' }, usage: { input: 5, output: 3 } }
  )
  const started = Date.now()
  const result = await provider.generate(ask())
  t.same(result.json, { answer: 'after wait' })
  t.same(result.usage, { inputTokens: 5, outputTokens: 3 })
  t.equal(server.requests.length, 2)
  t.ok(Date.now() - started >= 950, 'honoured the 1 s Retry-After')
  t.match(events, [{ event: 'retry', details: { status: 429, retry: 1, delayMs: 1000 } }])
})

t.test('a Retry-After beyond the cap is capped', async t => {
  const { server, provider, events } = await setup(t, { retry: { maxRetries: 1, baseMs: 5, maxDelayMs: 40 } })
  server.script.push({ status: 503, retryAfter: '3600' })
  await provider.generate(ask())
  t.equal(events[0].details.delayMs, 40)
})

t.test('pro model answering 503 or 404 falls back to flash at once; the result names flash', async t => {
  for (const status of [503, 404]) {
    const { server, provider, events } = await setup(t)
    server.script.push({ status })
    const result = await provider.generate(ask({ model: 'gemini-2.5-pro' }))
    t.same(server.requests.map(r => r.model), ['gemini-2.5-pro', 'gemini-2.5-flash'], `HTTP ${status}`)
    t.equal(result.model, 'gemini-2.5-flash')
    t.match(events, [{ event: 'fallback', details: { from: 'gemini-2.5-pro', to: 'gemini-2.5-flash', status } }])
  }
})

t.test('flash answering 503 is retried, not "fallen back"', async t => {
  const { server, provider } = await setup(t)
  server.script.push({ status: 503 })
  const result = await provider.generate(ask())
  t.same(server.requests.map(r => r.model), ['gemini-2.5-flash', 'gemini-2.5-flash'])
  t.equal(result.model, 'gemini-2.5-flash')
})

t.test('500 three times: 502 AMK_LLM_UNAVAILABLE after 1 + 2 retries', async t => {
  const { server, provider } = await setup(t)
  server.script.push({ status: 500 }, { status: 500 }, { status: 500 })
  const error = await rejection(provider.generate(ask()))
  t.equal(error.code, 'AMK_LLM_UNAVAILABLE')
  t.equal(error.statusCode, 502)
  t.match(error.details, { model: 'gemini-2.5-flash', status: 500, attempts: 3 })
  t.equal(server.requests.length, 3)
})

t.test('a 400 is not retried', async t => {
  const { server, provider } = await setup(t)
  server.script.push({ status: 400, message: 'bad schema' })
  const error = await rejection(provider.generate(ask()))
  t.equal(error.code, 'AMK_LLM_UNAVAILABLE')
  t.equal(server.requests.length, 1)
})

t.test('network failure is retried, then 502', async t => {
  const { server, provider } = await setup(t)
  await server.close()
  const error = await rejection(provider.generate(ask()))
  t.equal(error.code, 'AMK_LLM_UNAVAILABLE')
  t.equal(error.details?.attempts, 3)
})

t.test('a hang: 504 AMK_LLM_TIMEOUT after the timeout, and the upstream socket is closed', async t => {
  const { server, provider } = await setup(t, { timeoutMs: 300 })
  server.script.push({ hang: true })
  const aborted = server.waitForAbort()
  const error = await rejection(provider.generate(ask()))
  t.equal(error.code, 'AMK_LLM_TIMEOUT')
  t.equal(error.statusCode, 504)
  t.equal((await aborted).model, 'gemini-2.5-flash')
  t.equal(server.requests.length, 1, 'a timeout is not retried')
})

t.test('the caller aborting closes the upstream request (unary)', async t => {
  const { server, provider } = await setup(t)
  server.script.push({ hang: true })
  const controller = new AbortController()
  const pending = rejection(provider.generate(ask({ signal: controller.signal })))
  while (server.requests.length === 0) await new Promise(resolve => setTimeout(resolve, 5))
  const aborted = server.waitForAbort()
  controller.abort()
  t.equal((await pending).code, 'AMK_CANCELLED')
  await aborted
  t.equal(server.aborted.length, 1)
})

t.test('an abort during a backoff wait stops at once', async t => {
  const { server, provider } = await setup(t)
  server.script.push({ status: 429, retryAfter: '30' })
  const controller = new AbortController()
  const pending = rejection(provider.generate(ask({ signal: controller.signal })))
  while (server.requests.length === 0) await new Promise(resolve => setTimeout(resolve, 5))
  await new Promise(resolve => setTimeout(resolve, 20))
  controller.abort()
  t.equal((await pending).code, 'AMK_CANCELLED')
  t.equal(server.requests.length, 1)
})

t.test('stream: deltas in order, then usage from the last frame', async t => {
  const { server, provider } = await setup(t)
  server.script.push({ json: { answer: 'streamed reply' }, usage: { input: 9, output: 4 }, chunks: 5 })
  const chunks = await collect(provider.stream(ask()))
  const deltas = chunks.filter(c => c.type === 'delta').map(c => c.type === 'delta' ? c.delta : '')
  t.ok(deltas.length >= 4, 'several deltas')
  t.equal(deltas.join(''), JSON.stringify({ answer: 'streamed reply' }))
  t.same(chunks.at(-1), { type: 'done', usage: { inputTokens: 9, outputTokens: 4 }, model: 'gemini-2.5-flash' })
  t.equal(server.requests[0].stream, true)
})

t.test('stream: errors before the first chunk are retried; pro falls back', async t => {
  const { server, provider } = await setup(t)
  server.script.push(
    { status: 503 },
    { status: 429, retryAfter: '0' },
    { json: { answer: 'ok' }, usage: { input: 1, output: 1 } }
  )
  const chunks = await collect(provider.stream(ask({ model: 'gemini-2.5-pro' })))
  t.same(server.requests.map(r => r.model), ['gemini-2.5-pro', 'gemini-2.5-flash', 'gemini-2.5-flash'])
  t.match(chunks.at(-1), { type: 'done', model: 'gemini-2.5-flash' })
})

t.test('stream: the consumer aborting mid-stream closes the upstream socket', async t => {
  const { server, provider } = await setup(t)
  server.script.push({ text: '{"answer":"a long answer that stalls"}', chunks: 6, stallAfter: 2 })
  const controller = new AbortController()
  const aborted = server.waitForAbort()
  const seen: string[] = []
  const error = await rejection((async () => {
    for await (const chunk of provider.stream(ask({ signal: controller.signal }))) {
      if (chunk.type === 'delta') seen.push(chunk.delta)
      if (seen.length === 2) controller.abort()
    }
  })())
  t.equal(error.code, 'AMK_CANCELLED')
  t.equal(seen.length, 2)
  await aborted
})

t.test('stream: a stalled stream hits the idle timeout (504) and is closed', async t => {
  const { server, provider } = await setup(t, { timeoutMs: 300 })
  server.script.push({ text: '{"answer":"stall"}', chunks: 4, stallAfter: 1 })
  const aborted = server.waitForAbort()
  const error = await rejection(collect(provider.stream(ask())))
  t.equal(error.code, 'AMK_LLM_TIMEOUT')
  await aborted
})

t.test('stream: a consumer that stops early (break) aborts the HTTP request', async t => {
  const { server, provider } = await setup(t)
  server.script.push({ text: '{"answer":"stalls after two chunks"}', chunks: 6, stallAfter: 2 })
  const aborted = server.waitForAbort()
  for await (const chunk of provider.stream(ask())) {
    if (chunk.type === 'delta') break
  }
  await aborted
  t.equal(server.aborted.length, 1)
})

t.test('no usageMetadata: usage is estimated from the text and marked estimated', async t => {
  const { server, provider } = await setup(t)
  server.script.push({ text: '{"answer":"x"}', noUsage: true })
  const result = await provider.generate(ask())
  t.equal(result.usage.estimated, true)
  t.equal(result.usage.outputTokens, Math.ceil('{"answer":"x"}'.length / 4))
})

t.test('a stream without usageMetadata: estimated from the characters of its deltas', async t => {
  const { server, provider } = await setup(t)
  const text = '{"answer":"fine — Paris 🐪"}'
  server.script.push({ text, chunks: 3, noUsage: true })
  const chunks = await collect(provider.stream(ask()))
  t.match(chunks.at(-1), { type: 'done', usage: { outputTokens: Math.ceil(text.length / 4), estimated: true } })
})

t.test('check() makes no request', async t => {
  const { server, provider } = await setup(t)
  t.match(await provider.check(), { ok: true })
  t.equal(server.requests.length, 0)
})

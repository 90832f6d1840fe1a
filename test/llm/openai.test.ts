// The optional OpenAI-compatible provider against tiny local /v1/chat/completions servers: JSON-schema
// structured output, usage, SSE streaming with include_usage, a retried 429, and use through the app; one
// keep-alive pool per origin, SSE split anywhere, timeouts, retries and errors mapped to the catalogue, and a
// cancelled (or abandoned) stream closing the upstream connection.
import t, { type Test } from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { LazyAbortController } from '../../src/agents/call-abort.js'
import { createOpenAiProvider } from '../../src/llm/openai.js'
import { buildApp, invoke } from '../agents/support.js'

interface Seen { body: Record<string, unknown>, authorization?: string }

async function openAiServer (t: Test, answer: () => string) {
  const seen: Seen[] = []
  const failures: number[] = []
  const server = http.createServer(async (req, res) => {
    let raw = ''
    for await (const chunk of req) raw += chunk
    const body = JSON.parse(raw) as Record<string, unknown> & { stream?: boolean }
    seen.push({ body, authorization: req.headers.authorization })
    if (req.url !== '/v1/chat/completions') return res.writeHead(404).end()
    const status = failures.shift()
    if (status) return res.writeHead(status, { 'retry-after': '0' }).end('{"error":"busy"}')
    const content = answer()
    if (!body.stream) {
      res.writeHead(200, { 'content-type': 'application/json' })
      return res.end(
        JSON.stringify({
          choices: [{ message: { role: 'assistant', content } }],
          usage: { prompt_tokens: 17, completion_tokens: 23 }
        })
      )
    }
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    for (let i = 0; i < content.length; i += 10) { res.write(`data: ${JSON.stringify({ choices: [{ delta: { content: content.slice(i, i + 10) } }] })}\n\n`) }
    res.write(`data: ${JSON.stringify({ choices: [], usage: { prompt_tokens: 17, completion_tokens: 23 } })}\n\n`)
    res.end('data: [DONE]\n\n')
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => { server.closeAllConnections(); server.close(() => resolve()) }))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, failures }
}

const SCHEMA = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }

t.test('generate and stream with json_schema output and reported usage; 429 retried', async t => {
  const server = await openAiServer(t, () => '{"city":"Alexandria"}')
  const provider = createOpenAiProvider({
    baseUrl: server.url,
    apiKey: 'sk-local',
    timeoutMs: 2000,
    retry: { maxRetries: 2, baseMs: 1, maxDelayMs: 10 }
  })
  server.failures.push(429)
  const result = await provider.generate({
    model: 'llama-3',
    system: 'sys',
    prompt: 'Which city?',
    responseSchema: SCHEMA
  })
  t.same(result.json, { city: 'Alexandria' })
  t.same(result.usage, { inputTokens: 17, outputTokens: 23 })
  t.equal(server.seen.length, 2, 'the 429 was retried')
  t.match(server.seen[1], {
    authorization: 'Bearer sk-local',
    body: {
      model: 'llama-3',
      messages: [
        { role: 'system', content: 'sys' },
        { role: 'user', content: 'Which city?' }
      ],
      response_format: { type: 'json_schema', json_schema: { name: 'output', schema: SCHEMA } }
    }
  })

  const deltas: string[] = []
  let done: unknown
  for await (const chunk of provider.stream({ model: 'llama-3', system: 's', prompt: 'p', responseSchema: SCHEMA })) {
    if (chunk.type === 'delta') deltas.push(chunk.delta)
    else done = chunk
  }
  t.equal(deltas.join(''), '{"city":"Alexandria"}')
  t.same(done, { type: 'done', usage: { inputTokens: 17, outputTokens: 23 }, model: 'llama-3' })
  t.match(server.seen.at(-1)?.body, { stream: true, stream_options: { include_usage: true } })
})

t.test('through the app: LLM_PROVIDER=openai serves a method and prices it from LLM_PRICING', async t => {
  const server = await openAiServer(t, () =>
    JSON.stringify({
      topic: 'Dahab',
      summary: 'A Red Sea town.',
      keyPoints: ['Diving'],
      subtopics: [],
      openQuestions: [],
      suggestedSources: ['Tourism board'],
      confidence: 'medium',
      source: 'llm-estimate'
    })
  )
  const app = await buildApp(t, {
    env: {
      LLM_PROVIDER: 'openai',
      OPENAI_BASE_URL: `${server.url}/v1`,
      OPENAI_MODEL: 'qwen2.5',
      LLM_PRICING: '{"qwen2.5":{"input":1,"output":1}}'
    }
  })
  t.equal(app.features.llmProvider, `openai-compatible (qwen2.5 at ${new URL(server.url).host})`)
  const res = await invoke(app, 'content', 'researchTopic', { topic: 'Dahab' })
  t.equal(res.statusCode, 200)
  t.same(res.json().usage, { inputTokens: 17, outputTokens: 23, costUsd: 0.00004, model: 'qwen2.5' })
})

/** A server whose every request goes to `handle`; counts the TCP connections it accepted. */
async function rawServer (t: Test, handle: (req: http.IncomingMessage, res: http.ServerResponse) => void) {
  const server = http.createServer((req, res) => {
    req.resume()
    req.on('end', () => handle(req, res))
  })
  let connections = 0
  server.on('connection', () => { connections++ })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => { server.closeAllConnections(); server.close(() => resolve()) }))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, connections: () => connections }
}

const provider = (url: string, timeoutMs = 2000, maxRetries = 0) =>
  createOpenAiProvider({ baseUrl: url, timeoutMs, retry: { maxRetries, baseMs: 1, maxDelayMs: 5 } })
const REQUEST = { model: 'm', system: 's', prompt: 'p' }
const frame = (content: string) => `data: ${JSON.stringify({ choices: [{ delta: { content } }] })}\n\n`

async function collect (stream: AsyncIterable<{ type: string, delta?: string }>) {
  let text = ''
  for await (const chunk of stream) if (chunk.type === 'delta') text += chunk.delta
  return text
}

t.test('calls share one keep-alive connection per origin, across provider instances', async t => {
  const server = await rawServer(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ choices: [{ message: { content: 'ok' } }], usage: { prompt_tokens: 1, completion_tokens: 1 } }))
  })
  for (let i = 0; i < 10; i++) t.equal((await provider(server.url).generate(REQUEST)).text, 'ok')
  // undici's pool frees a connection a tick after the answer was read, so the second call may open another.
  t.ok(server.connections() <= 2, `ten sequential calls, ${server.connections()} connection(s)`)
})

t.test('SSE parsed across arbitrary chunk boundaries, CRLF lines, comments, multi-line data and UTF-8', async t => {
  const events = [
    ': a comment line\r\n',
    `data: ${JSON.stringify({ choices: [{ delta: { content: 'Ḁlexandrïa ' } }] })}\r\n\r\n`,
    // One event's JSON spread over two data lines (joined with a newline, which JSON allows).
    'event: message\ndata: {"choices":[{"delta":\ndata: {"content":"→ 日本 🐪"}}]}\n\n',
    `data:${JSON.stringify({ choices: [], usage: { prompt_tokens: 3, completion_tokens: 4 } })}\n\n`,
    'data: [DONE]\n\n'
  ]
  const bytes = Buffer.from(events.join(''))
  const server = await rawServer(t, async (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    // Three bytes at a time: lines, events and multi-byte characters all split between chunks.
    for (let i = 0; i < bytes.length; i += 3) {
      res.write(bytes.subarray(i, i + 3))
      await new Promise(resolve => setImmediate(resolve))
    }
    res.end()
  })
  const chunks = []
  for await (const chunk of provider(server.url).stream(REQUEST)) chunks.push(chunk)
  t.same(chunks, [
    { type: 'delta', delta: 'Ḁlexandrïa ' },
    { type: 'delta', delta: '→ 日本 🐪' },
    { type: 'done', usage: { inputTokens: 3, outputTokens: 4 }, model: 'm' }
  ])
})

t.test('a stream without usage: estimated from the characters of its deltas', async t => {
  const deltas = ['Ḁlexandrïa ', '→ 日本 🐪', '!']
  const server = await rawServer(t, async (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    for (const content of deltas) res.write(`data: ${JSON.stringify({ choices: [{ delta: { content } }] })}\n\n`)
    res.end('data: [DONE]\n\n')
  })
  const chunks = []
  for await (const chunk of provider(server.url).stream(REQUEST)) chunks.push(chunk)
  const chars = deltas.join('').length // UTF-16 units, as the estimate of a whole text counts them
  t.same(chunks.at(-1), {
    type: 'done',
    usage: { inputTokens: 1, outputTokens: Math.ceil(chars / 4), estimated: true },
    model: 'm'
  })
})

t.test('timeouts: no headers in time, and a stream that stops, are AMK_LLM_TIMEOUT', async t => {
  const silent = await rawServer(t, () => { /* never answers */ })
  await t.rejects(provider(silent.url, 150).generate(REQUEST), { code: 'AMK_LLM_TIMEOUT' })
  await t.rejects(collect(provider(silent.url, 150).stream(REQUEST)), { code: 'AMK_LLM_TIMEOUT' })

  const stalls = await rawServer(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    res.write(frame('first'))
  })
  const deltas: string[] = []
  await t.rejects(
    (async () => {
      for await (const chunk of provider(stalls.url, 150).stream(REQUEST)) if (chunk.type === 'delta') deltas.push(chunk.delta)
    })(),
    { code: 'AMK_LLM_TIMEOUT', message: /stopped streaming for 150 ms/ }
  )
  t.same(deltas, ['first'], 'what arrived before the stall was delivered')
})

t.test('5xx and refused connections are retried, then AMK_LLM_UNAVAILABLE; a bad body too', async t => {
  let calls = 0
  const failing = await rawServer(t, (_req, res) => { calls++; res.writeHead(503).end('busy') })
  await t.rejects(provider(failing.url, 2000, 2).generate(REQUEST), {
    code: 'AMK_LLM_UNAVAILABLE',
    details: { status: 503, attempts: 3 }
  })
  t.equal(calls, 3)
  t.equal(failing.connections(), 1, 'the error bodies were read: the connection was reused')

  const closed = http.createServer()
  await new Promise<void>(resolve => closed.listen(0, '127.0.0.1', resolve))
  const port = (closed.address() as AddressInfo).port
  await new Promise(resolve => closed.close(resolve))
  await t.rejects(provider(`http://127.0.0.1:${port}`, 2000, 1).generate(REQUEST), {
    code: 'AMK_LLM_UNAVAILABLE',
    message: /network error.*2 attempt/
  })

  const garbled = await rawServer(t, (_req, res) => { res.writeHead(200).end('data: not json\n\n') })
  await t.rejects(provider(garbled.url).generate(REQUEST), { code: 'AMK_LLM_UNAVAILABLE', message: /Unreadable/ })
  await t.rejects(collect(provider(garbled.url).stream(REQUEST)), {
    code: 'AMK_LLM_UNAVAILABLE',
    message: /The stream from m failed/
  })
})

/** A server streaming one delta every 20 ms until the client goes away; resolves `closed` when it does. */
async function endlessStream (t: Test) {
  let closed!: () => void
  const gone = new Promise<void>(resolve => { closed = resolve })
  let ended = false
  const server = await rawServer(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    const timer = setInterval(() => res.write(frame('tick ')), 20)
    res.on('close', () => { clearInterval(timer); ended = res.writableFinished; closed() })
  })
  return { ...server, gone, finished: () => ended }
}

// Both the AbortSignal a library caller passes and the agent service's own light signal (undici takes either).
for (const [kind, make] of [
  ['an AbortController', () => new AbortController()],
  ["the agent service's LazyAbortController", () => new LazyAbortController()]
] as const) {
  t.test(`a cancelled stream aborts the upstream request at once: ${kind}`, async t => {
    const server = await endlessStream(t)
    const controller = make()
    const deltas: string[] = []
    await t.rejects(
      (async () => {
        for await (const chunk of provider(server.url).stream({ ...REQUEST, signal: controller.signal })) {
          if (chunk.type === 'delta') deltas.push(chunk.delta)
          if (deltas.length === 3) controller.abort()
        }
      })(),
      { code: 'AMK_CANCELLED' }
    )
    await server.gone
    t.equal(server.finished(), false, 'the upstream connection was closed mid-stream')
    t.equal(deltas.length, 3)

    // Cancelled before the answer's headers, too.
    const early = make()
    const silent = await rawServer(t, () => {})
    const pending = provider(silent.url).generate({ ...REQUEST, signal: early.signal })
    setTimeout(() => early.abort(), 50)
    await t.rejects(pending, { code: 'AMK_CANCELLED' })
  })
}

t.test('a consumer that stops reading ends the upstream request', async t => {
  const server = await endlessStream(t)
  let seen = 0
  for await (const chunk of provider(server.url).stream(REQUEST)) {
    if (chunk.type === 'delta' && ++seen === 2) break
  }
  await server.gone
  t.equal(server.finished(), false, 'closed by the client, not finished by the server')
})

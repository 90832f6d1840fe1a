// Acceptance 3 (Node): the four stream routes in the Vercel AI SDK UI message stream format, read by the `ai`
// package's own DefaultChatTransport and readUIMessageStream. The final UIMessage's text and data parts equal
// the native stream's result for the same input; refusals before the stream opens reject the transport with
// the error shape, failures inside it arrive as `error` chunks; Last-Event-ID resumes (and the AI SDK's
// replaying resume) work in this format too.
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import {
  DefaultChatTransport,
  readUIMessageStream,
  uiMessageChunkSchema,
  type UIMessage,
  type UIMessageChunk
} from 'ai'
import {
  encodeChunks,
  uiMessageStreamWire,
  type UiMessageChunk
} from '../../src/protocols/ui-message-stream.js'
import type { LoggedEvent } from '../../src/streams/events.js'
import { startGeminiServer } from '../fixtures/gemini-server.js'
import { buildStreams, listen, premium, ROUTES, stalling, until, type RouteName } from '../streams/support.js'
import { nativeStream, summarize, UI_FORMAT } from './ai-sdk-support.js'

const userMessage: UIMessage = { id: 'u1', role: 'user', parts: [{ type: 'text', text: 'Write it' }] }

interface Exchange { chunks: UIMessageChunk[], message: UIMessage | undefined, errors: string[], headers: Headers[] }

/** Sends one chat request through DefaultChatTransport and reads the answer with readUIMessageStream. */
async function chat (
  base: string,
  api: string,
  body: Record<string, unknown>,
  headers: Record<string, string> = premium
): Promise<Exchange> {
  const seen: Headers[] = []
  const transport = new DefaultChatTransport({
    api: `${base}${api}`,
    headers,
    body,
    fetch: async (input, init) => {
      const res = await fetch(input, init)
      seen.push(res.headers)
      return res
    }
  })
  const stream = await transport.sendMessages({
    chatId: 'chat-1',
    messages: [userMessage],
    trigger: 'submit-message',
    messageId: undefined,
    abortSignal: undefined
  })
  return { ...(await read(stream)), headers: seen }
}

/** The chunks of a UI message stream and the message readUIMessageStream builds from them. */
async function read (stream: ReadableStream<UIMessageChunk>, message?: UIMessage) {
  const [forChunks, forMessage] = stream.tee()
  const chunks: UIMessageChunk[] = []
  const collected = (async () => {
    for await (const chunk of forChunks) chunks.push(chunk)
  })()
  const errors: string[] = []
  let last: UIMessage | undefined
  const onError = (error: unknown) => { errors.push(error instanceof Error ? error.message : String(error)) }
  for await (const snapshot of readUIMessageStream({ stream: forMessage, message, onError })) {
    last = snapshot
  }
  await collected
  return { chunks, message: last, errors }
}

/** The raw response of a ui-message-stream request: frames with their SSE ids. */
async function rawFrames (url: string, init: RequestInit = {}) {
  const res = await fetch(url, { ...init, headers: { ...premium, ...init.headers } })
  const text = await res.text()
  const frames = text.split('\n\n').filter(block => block.includes('data: ')).map(block => ({
    id: /^id: (.+)$/m.exec(block)?.[1],
    data: /^data: (.+)$/m.exec(block)![1]
  }))
  return { res, text, frames }
}

t.test('each stream route read by the AI SDK equals the native stream: text, data parts, usage', async t => {
  // Two apps, so neither answer comes from the other's response cache (stream routes do not take
  // Cache-Control): the same input generated twice by the deterministic offline provider.
  const nativeApp = await buildStreams(t)
  const app = await buildStreams(t)
  const base = await listen(app)
  for (const route of Object.keys(ROUTES) as RouteName[]) {
    const native = await nativeStream(nativeApp, route)
    const { chunks, message, errors, headers } = await chat(
      base,
      `/api/stream/${route}?${UI_FORMAT}`,
      ROUTES[route].input
    )
    t.same(errors, [], `${route}: no error chunk`)
    t.equal(headers[0].get('x-vercel-ai-ui-message-stream'), 'v1', `${route}: the protocol header`)
    t.match(headers[0].get('content-type'), /^text\/event-stream/)
    const summary = summarize(message)
    t.match(summary.id, /^st_[0-9a-f]{24}$/, `${route}: the message id is the stream id`)
    t.not(summary.id, native.streamId, 'a stream of its own')
    t.equal(summary.text, native.text, `${route}: the text part is the native token text`)
    t.same(JSON.parse(summary.text), native.result, `${route}: which parses to the result`)
    t.same(summary.data['data-result'], [native.result], `${route}: data-result is the native result event's data`)
    t.same(summary.data['data-usage'], [native.usage], `${route}: data-usage is the native usage event`)
    t.notOk(summary.data['data-progress'], 'progress is transient: not kept in the message')
    t.match(summary.metadata, {
      streamId: summary.id,
      agent: ROUTES[route].agent,
      method: ROUTES[route].method,
      durationMs: Number,
      usage: native.usage
    }, 'message metadata: stream, agent, method, duration and usage')
    const items = [...(summary.data['data-partial'] ?? []), ...(summary.data['data-post'] ?? [])]
    t.same(items, native.items, `${route}: one data part per partial / post event`)
    const types = chunks.map(c => c.type)
    t.same(types.slice(0, 2), ['start', 'start-step'], 'start, start-step first')
    t.same(types.slice(-2), ['finish-step', 'finish'], 'finish-step, finish last')
    t.ok(types.indexOf('text-end') < types.indexOf('data-result'), 'the text ends before the result')
    t.match(chunks.at(-1), { type: 'finish', finishReason: 'stop' })
  }
})

t.test('the usage ledger records a UI message stream as it records the native stream', async t => {
  const ledgerAfter = async (run: (app: FastifyInstance) => Promise<unknown>) => {
    const app = await buildStreams(t) // the file's PGlite, emptied for this app
    await run(app)
    return until(async () => {
      const rows = await app.db.query(
        'SELECT agent, method, model, status, input_tokens, output_tokens, cost_usd FROM usage_ledger'
      )
      return rows.length > 0 && rows
    })
  }
  const native = await ledgerAfter(app => nativeStream(app, 'itinerary'))
  const ui = await ledgerAfter(async app => chat(await listen(app), `/api/stream/itinerary?${UI_FORMAT}`, ROUTES.itinerary.input))
  t.equal(native.length, 1, 'one row for the native stream')
  t.same(ui, native, 'the same row (method, model, status, tokens, cost) for the UI message stream')
})

t.test('the wire format: ids <streamId>-<seq> on the last frame of each group, [DONE] last, schema-valid', async t => {
  const app = await buildStreams(t)
  const base = await listen(app)
  // The header form of the negotiation, on the GET (EventSource) route.
  const { res, frames } = await rawFrames(`${base}/api/stream/blog?${ROUTES.blog.query}`, {
    headers: { 'x-stream-format': 'ui-message-stream' }
  })
  t.equal(res.status, 200)
  t.equal(res.headers.get('x-vercel-ai-ui-message-stream'), 'v1')
  t.equal(frames.at(-1)?.data, '[DONE]', 'data: [DONE] ends the stream')
  const streamId = JSON.parse(frames[0].data).messageId
  const ids = frames.map(f => f.id).filter(Boolean)
  const logged = await app.streams.log.read(streamId, 0)
  t.same(ids, logged.map(e => `${streamId}-${e.seq}`), 'one id per logged event, in order, on its last frame')
  for (const frame of frames.slice(0, -1)) {
    const parsed = await uiMessageChunkSchema().validate!(JSON.parse(frame.data))
    t.ok(parsed.success, `a valid UIMessageChunk: ${frame.data.slice(0, 60)}`)
  }
  // The query parameter wins over the header; native stays the default.
  const native = await rawFrames(`${base}/api/stream/blog?${ROUTES.blog.query}&format=native`, {
    headers: { 'x-stream-format': 'ui-message-stream' }
  })
  t.equal(native.res.headers.get('x-vercel-ai-ui-message-stream'), null)
  t.match(native.text, /\nevent: connected\n/, 'native §8 events')
})

t.test('bad format values and a chat envelope without the format are 400s in the error shape', async t => {
  const app = await buildStreams(t)
  const badQuery = await app.inject({
    method: 'POST',
    url: '/api/stream/blog?format=ui',
    headers: premium,
    payload: ROUTES.blog.input
  })
  const badHeader = await app.inject({
    url: `/api/stream/blog?${ROUTES.blog.query}`,
    headers: { ...premium, 'x-stream-format': 'vercel' }
  })
  const envelope = await app.inject({
    method: 'POST',
    url: '/api/stream/blog',
    headers: premium,
    payload: { ...ROUTES.blog.input, id: 'chat-1', messages: [userMessage], trigger: 'submit-message' }
  })
  for (const res of [badQuery, badHeader, envelope]) {
    t.equal(res.statusCode, 400)
    t.match(res.json(), { statusCode: 400, code: 'AMK_VALIDATION', message: String, requestId: String })
  }
})

t.test('refusals before the stream opens reject the transport with the error shape', async t => {
  const app = await buildStreams(t, { env: { BUDGETS: '{"premium":{"tokens":1}}' } })
  const base = await listen(app)
  const invalid = chat(base, `/api/stream/blog?${UI_FORMAT}`, { ...ROUTES.blog.input, length: 'long' })
  await t.rejects(invalid, /"code":"AMK_VALIDATION"/, 'invalid input: 400 AMK_VALIDATION')
  const first = await chat(base, `/api/stream/blog?${UI_FORMAT}`, ROUTES.blog.input)
  t.match(first.chunks.at(-1), { type: 'finish', finishReason: 'stop' }, 'the first stream spends the budget')
  const spent = chat(base, `/api/stream/itinerary?${UI_FORMAT}`, ROUTES.itinerary.input)
  await t.rejects(spent, /"code":"AMK_BUDGET_EXCEEDED"/, 'a spent budget: 429 AMK_BUDGET_EXCEEDED')
  t.equal(app.streams.registry.active(), 0, 'nothing runs')
})

t.test('a failure inside the stream is an error chunk with the native code, then finish', async t => {
  const gemini = await startGeminiServer(() => ({ text: 'Sorry, no JSON today.' }))
  t.teardown(() => gemini.close())
  const app = await buildStreams(t, { env: { GEMINI_API_KEY: 'test-key', GEMINI_BASE_URL: gemini.url } })
  const base = await listen(app)
  const native = await app.inject({ method: 'POST', url: '/api/stream/blog', headers: premium, payload: ROUTES.blog.input })
  const failure = native.body.split('\n\n').find(block => block.includes('event: failure'))
  t.ok(failure, 'the native stream fails')
  const { code, message: reason } = JSON.parse(/^data: (.+)$/m.exec(failure ?? '')?.[1] ?? '{}')
  t.match(code, /^AMK_/)

  const { chunks, message, errors } = await chat(base, `/api/stream/blog?${UI_FORMAT}`, ROUTES.blog.input)
  t.same(errors, [`${code}: ${reason}`], 'readUIMessageStream reports "<CODE>: message"')
  t.same(chunks.slice(-3), [
    { type: 'error', errorText: `${code}: ${reason}` },
    { type: 'finish-step' },
    { type: 'finish', finishReason: 'error' }
  ])
  const text = message?.parts.find(p => p.type === 'text')
  t.match(text, { state: 'done' }, 'the text part is closed before the error')
  t.notOk(summarize(message).data['data-result'], 'no result')
})

t.test('Last-Event-ID resumes in this format; the AI SDK replaying resume gets the whole message', async t => {
  const app = await buildStreams(t)
  const base = await listen(app)
  const native = await nativeStream(app, 'social')
  // A POST that keeps running after its client goes away (onDisconnect: continue), as a resumable chat sends it.
  const first = await rawFrames(`${base}/api/stream/social?${UI_FORMAT}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...ROUTES.social.input, onDisconnect: 'continue', id: 'c', messages: [userMessage] })
  })
  const chunks = first.frames.map(f => f.data === '[DONE]' ? null : JSON.parse(f.data))
  const streamId: string = chunks[0].messageId
  // The connection "dropped" right after the 5th text delta: the client holds that frame's id.
  const deltas = chunks.flatMap((c, i) => c?.type === 'text-delta' ? [i] : [])
  const cut = deltas[4]
  const lastEventId = first.frames[cut].id
  t.ok(lastEventId?.startsWith(`${streamId}-`), `the frame carries its id (${lastEventId})`)
  const before = deltas.filter(i => i <= cut).map(i => chunks[i].delta).join('')

  const resumeTo = (headers: Record<string, string>) => new DefaultChatTransport({
    api: `${base}/api/stream/social?${UI_FORMAT}`,
    prepareReconnectToStreamRequest: ({ id }) => ({
      api: `${base}/api/stream/${id}/events?${UI_FORMAT}`,
      headers: { ...premium, ...headers }
    })
  })
  const rest = await resumeTo({ 'last-event-id': lastEventId! }).reconnectToStream({ chatId: streamId })
  t.ok(rest, 'the resume opened')
  const resumed = await read(rest!)
  t.same(resumed.chunks.slice(0, 3).map(c => c.type), ['start', 'start-step', 'text-start'],
    'a resumed response is a well-formed stream by itself')
  t.equal(before + summarize(resumed.message).text, native.text, 'the text before the cut + the resumed text')
  t.same(summarize(resumed.message).data['data-result'], [native.result])

  // resumeStreamIsReplay (the default): no Last-Event-ID, the whole stream again.
  const replay = await read((await resumeTo({}).reconnectToStream({ chatId: streamId }))!)
  t.equal(summarize(replay.message).id, streamId)
  t.equal(summarize(replay.message).text, native.text, 'the replay has the whole text')
  t.same(summarize(replay.message).data['data-post'], native.items)

  const end = first.frames.at(-1)!.id!
  t.equal(await resumeTo({ 'last-event-id': end }).reconnectToStream({ chatId: streamId }), null,
    'resumed at the end: 204, which the transport reads as nothing to resume')
})

t.test('the wire on its own: a resume mid-text re-opens the text part; notices end without finish', async t => {
  const wire = uiMessageStreamWire()
  const parse = (text: string) => text.split('\n\n').filter(Boolean).map(block => ({
    id: /^id: (.+)$/m.exec(block)?.[1],
    chunk: /^data: (.+)$/m.exec(block)?.[1]
  }))
  const token: LoggedEvent = { event: 'token', data: { chunk: 'ab', index: 7 }, seq: 9 }
  t.same(parse(wire.event('st_x', token)), [
    { id: undefined, chunk: '{"type":"start","messageId":"st_x","messageMetadata":{"streamId":"st_x"}}' },
    { id: undefined, chunk: '{"type":"start-step"}' },
    { id: undefined, chunk: '{"type":"text-start","id":"text"}' },
    { id: 'st_x-9', chunk: '{"type":"text-delta","id":"text","delta":"ab"}' }
  ])
  t.same(parse(wire.event('st_x', { ...token, seq: 10 })).length, 1, 'then one frame per token')
  const shutting = wire.notice('st_x-10', {
    event: 'error',
    data: { code: 'SHUTTING_DOWN', message: 'going down', recoverable: true, lastEventId: 'st_x-10' }
  })
  t.same(parse(shutting), [
    { id: 'st_x-10', chunk: '{"type":"error","errorText":"SHUTTING_DOWN: going down (resume after st_x-10)"}' }
  ], 'SHUTTING_DOWN: an error chunk repeating the last id, no finish, no [DONE]')
  t.equal(encodeChunks([{ type: 'finish-step' }], 'st_x-3', true), 'data: {"type":"finish-step"}\n\nid: st_x-3\ndata: [DONE]\n\n')
  // Every chunk type the wire writes is one of the `ai` package's UIMessageChunk types (the assignment is
  // checked by the compiler) and passes its schema.
  const own: UiMessageChunk[] = [
    { type: 'start', messageId: 'st_x', messageMetadata: { streamId: 'st_x' } },
    { type: 'start-step' },
    { type: 'text-start', id: 'text' },
    { type: 'text-delta', id: 'text', delta: 'a' },
    { type: 'text-end', id: 'text' },
    { type: 'data-progress', data: { progress: 1, message: 'm' }, transient: true },
    { type: 'data-result', id: 'result', data: {} },
    { type: 'error', errorText: 'AMK_X: m' },
    { type: 'finish-step' },
    { type: 'finish', finishReason: 'stop', messageMetadata: { durationMs: 1 } }
  ]
  const sdk: UIMessageChunk[] = own
  for (const chunk of sdk) t.ok((await uiMessageChunkSchema().validate!(chunk)).success, chunk.type)
})

t.test('SHUTTING_DOWN reaches an open UI message stream as an error chunk', async t => {
  const gemini = await startGeminiServer(stalling)
  t.teardown(() => gemini.close())
  const app: FastifyInstance = await buildStreams(t, { env: { GEMINI_API_KEY: 'test-key', GEMINI_BASE_URL: gemini.url } })
  const base = await listen(app)
  const transport = new DefaultChatTransport({ api: `${base}/api/stream/blog?${UI_FORMAT}`, headers: premium, body: ROUTES.blog.input })
  const stream = await transport.sendMessages({
    chatId: 'c', messages: [userMessage], trigger: 'submit-message', messageId: undefined, abortSignal: undefined
  })
  const reader = stream.getReader()
  const chunks: UIMessageChunk[] = []
  for (;;) {
    const { value } = await reader.read()
    chunks.push(value!)
    if (value?.type === 'text-delta') break
  }
  const closing = app.close()
  for (;;) {
    const { value, done } = await reader.read()
    if (done) break
    chunks.push(value)
  }
  await closing
  const last = chunks.at(-1)
  t.match(last, { type: 'error', errorText: /^SHUTTING_DOWN: .*\(resume after st_[0-9a-f]{24}-\d+\)$/ })
  t.notOk(chunks.some(c => c.type === 'finish'), 'no finish: the message is not complete')
})

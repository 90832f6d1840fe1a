// The SDK's stream() against a listening server (Node): typed events, a connection cut mid-stream by a
// proxy is resumed with Last-Event-ID without loss or duplicates, aborting cancels the generation; and
// the server side of browser-correct streams: failures go out as `failure`, GET streams survive a drop.
import t from 'tap'
import http from 'node:http'
import type { FastifyInstance } from 'fastify'
import { createAmrikyyClient, type StreamEvent } from '../../client/index.js'
import { modelAnswer } from '../agents/support.js'
import { startGeminiServer } from '../fixtures/gemini-server.js'
import { buildStreams, listen, PREMIUM_KEY, premium, ROUTES } from '../streams/support.js'
import { cuttingProxy } from './proxy.js'

/** The last logged event once the stream's log has ended (polls: the generation runs on its own). */
async function terminal (app: FastifyInstance, streamId: string) {
  for (let i = 0; i < 600; i++) {
    const last = await app.streams.log.last(streamId)
    if (last && (last.event === 'complete' || last.event === 'error')) return last
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  throw new Error(`stream ${streamId} did not end`)
}

t.test('stream() resumes a dropped connection with Last-Event-ID: every event once, in order', async t => {
  const app = await buildStreams(t)
  const proxy = await cuttingProxy(new URL(await listen(app)), 4000)
  t.teardown(proxy.close)
  const client = createAmrikyyClient({ baseUrl: proxy.url, apiKey: PREMIUM_KEY })

  const events: StreamEvent[] = []
  let text = ''
  for await (const event of client.stream(
    'blog',
    { topic: 'Budget travel in Vietnam', keywords: ['hanoi'], length: 600 },
    { reconnectDelayMs: 50 }
  )) {
    events.push(event)
    if (event.event === 'token') text += event.data.chunk // narrowed: data is { chunk, index }
  }
  t.equal(events.at(-1)?.event, 'complete', 'the stream completed')
  t.equal(proxy.streamRequests.length, 2, 'the first request and one resume')
  const streamId = events[0].event === 'connected' ? events[0].data.streamId : ''
  const resumedFrom = /\r\nlast-event-id: ([^\r]+)/i.exec(proxy.streamRequests[1])?.[1]
  t.ok(resumedFrom?.startsWith(`${streamId}-`), `the resume sent Last-Event-ID ${resumedFrom}`)
  const logged = await app.streams.log.read(streamId, 0)
  t.same(events.map(e => e.id), logged.map(e => `${streamId}-${e.seq}`), 'every logged event arrived once, in order')
  const result = events.find(e => e.event === 'result')
  t.same(
    JSON.parse(text),
    result?.event === 'result' ? result.data.data : undefined,
    'the tokens concatenate to the result'
  )
})

t.test('aborting the signal cancels the generation on the server', async t => {
  const app = await buildStreams(t)
  const client = createAmrikyyClient({ baseUrl: await listen(app), apiKey: PREMIUM_KEY })
  const controller = new AbortController()
  let streamId = ''
  const reading = (async () => {
    for await (const event of client.stream('blog', ROUTES.blog.input as { topic: string }, {
      signal: controller.signal
    })) {
      if (event.event === 'connected') streamId = event.data.streamId
      if (event.event === 'token') controller.abort()
    }
  })()
  await t.rejects(reading, { name: 'AbortError' }, 'the loop ends with the abort reason')
  t.match(
    await terminal(app, streamId),
    { event: 'error', data: { code: 'CANCELLED' } },
    'the generation was cancelled'
  )

  // On the wire a server failure is `event: failure`, never `event: error` (EventSource.onerror).
  const replay = await app.inject({
    method: 'POST',
    url: '/api/stream/blog',
    headers: { ...premium, 'last-event-id': `${streamId}-1` },
    payload: ROUTES.blog.input
  })
  t.match(replay.body, /\nevent: failure\ndata: \{"code":"CANCELLED"/, 'the failure frame')
  t.notMatch(replay.body, /event: error/)
})

/** Opens a stream with node:http and drops the connection after the first event (the model has not answered yet). */
async function dropAfterConnected (url: string, method: 'GET' | 'POST'): Promise<string> {
  // Different inputs for GET and POST: a cached answer would end the stream at once.
  const target = new URL(
    method === 'GET' ? '/api/stream/blog?topic=Night+trains+in+Europe&length=600' : '/api/stream/blog',
    url
  )
  return new Promise((resolve, reject) => {
    const request = http.request(
      target,
      { method, headers: { ...premium, 'content-type': 'application/json' } },
      response => {
        let text = ''
        response.setEncoding('utf8')
        response.on('data', (chunk: string) => {
          text += chunk
          if (text.includes('event: connected')) {
            request.destroy()
            resolve(/"streamId":"(st_[0-9a-f]+)"/.exec(text)?.[1] ?? '')
          }
        })
      }
    )
    request.on('error', () => {})
    request.on('close', () => reject(new Error('closed before an event')))
    request.end(method === 'POST' ? JSON.stringify({ topic: 'Slow boats in Laos', length: 600 }) : undefined)
  })
}

t.test('a dropped GET stream runs on by default (EventSource reconnects); POST keeps cancel', async t => {
  // The model answers after a second, well after the client went away.
  const gemini = await startGeminiServer(async request => {
    await new Promise(resolve => setTimeout(resolve, 1000))
    return { text: JSON.stringify((modelAnswer(request) as { json: unknown }).json), chunks: 5 }
  })
  t.teardown(() => gemini.close())
  const app = await buildStreams(t, { env: { GEMINI_API_KEY: 'test-key', GEMINI_BASE_URL: gemini.url } })
  const url = await listen(app)
  const viaGet = await dropAfterConnected(url, 'GET')
  t.match(await terminal(app, viaGet), { event: 'complete' }, 'GET: the generation completed into the log')
  const viaPost = await dropAfterConnected(url, 'POST')
  t.match(await terminal(app, viaPost), { event: 'error', data: { code: 'CANCELLED' } }, 'POST: a disconnect cancels')
})

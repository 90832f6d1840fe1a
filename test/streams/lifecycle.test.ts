// Acceptance 3 and 7 over real sockets: a client disconnect and a cancel abort the upstream Gemini
// request (the local server sees its socket closed within a second), the active gauge returns, the
// ledger row is written; onDisconnect 'continue' keeps generating for a resume; per-caller and
// per-process caps answer 429/503 with Retry-After.
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { startGeminiServer } from '../fixtures/gemini-server.js'
import { jsonOf, openSse } from './sse-client.js'
import { admin, buildStreams, listen, other, premium, ROUTES, seqOf, stalling, until, within } from './support.js'

async function geminiApp (t: Test, env: Record<string, string> = {}) {
  const gemini = await startGeminiServer(stalling)
  t.teardown(() => gemini.close())
  const app = await buildStreams(t, { env: { GEMINI_API_KEY: 'test-key', GEMINI_BASE_URL: gemini.url, ...env } })
  return { gemini, app, url: await listen(app) }
}

const activeGauge = async (app: FastifyInstance, agent: string) => {
  const text = (await app.inject({ url: '/api/metrics', headers: admin })).body
  return Number(new RegExp(`stream_sessions_active\\{agent="${agent}"\\} (\\d+)`).exec(text)?.[1])
}
const ledgerRows = (app: FastifyInstance, streamId: string) =>
  app.db.query<{ status: string; estimated: boolean; output_tokens: number }>(
    'SELECT status, estimated, output_tokens FROM usage_ledger WHERE stream_id = $1',
    [streamId]
  )

t.test('client disconnect aborts the upstream call; gauge, metrics, ledger and log record it', async t => {
  const { gemini, app, url } = await geminiApp(t)
  const before = await activeGauge(app, 'content')
  const stream = await openSse(`${url}/api/stream/blog`, { headers: premium, body: ROUTES.blog.input })
  await stream.until(frames => frames.filter(f => f.event === 'token').length >= 3, 'three tokens')
  const streamId = stream.frames[0].data.streamId
  t.equal(await activeGauge(app, 'content'), before + 1, 'one more active stream')
  stream.destroy()
  const aborted = await within(gemini.waitForAbort(), 1000, null)
  t.ok(aborted, 'the Gemini server saw its request aborted within one second')
  await until(() => app.streams.registry.active() === 0)
  t.equal(await activeGauge(app, 'content'), before, 'the active gauge is back')
  t.match(
    (await app.inject({ url: '/api/metrics', headers: admin })).body,
    /stream_sessions_total\{agent="content",status="cancelled"\} 1/
  )
  t.match(
    await until(async () => (await ledgerRows(app, streamId))[0]),
    { status: 'cancelled', estimated: true },
    'ledger row with estimated usage'
  )
  const last = await app.streams.log.last(streamId)
  t.match(last, { event: 'error', data: { code: 'CANCELLED', recoverable: false } }, 'the log ends with CANCELLED')
})

t.test('shutdown aborting the invocations interrupts a stream: GENERATION_INTERRUPTED, upstream aborted', async t => {
  const { gemini, app, url } = await geminiApp(t)
  const stream = await openSse(`${url}/api/stream/blog`, { headers: premium, body: ROUTES.blog.input })
  await stream.until(frames => frames.some(f => f.event === 'token'), 'a token')
  const aborted = gemini.waitForAbort()
  t.equal(app.agents.abortInFlight(), 1, "the stream's call is in flight")
  t.ok(await within(aborted, 1000, null), 'upstream aborted within one second')
  const frames = await stream.finished()
  t.match(frames.at(-1), { event: 'error', data: { code: 'GENERATION_INTERRUPTED', recoverable: false } })
  t.same(frames.map(seqOf), frames.map((_f, i) => i + 1))
})

t.test('cancel: owner or agent:manage only; aborts upstream, the client gets CANCELLED and the end', async t => {
  const { gemini, app, url } = await geminiApp(t)
  const stream = await openSse(`${url}/api/stream/itinerary`, { headers: premium, body: ROUTES.itinerary.input })
  await stream.until(frames => frames.some(f => f.event === 'token'), 'a token')
  const streamId = stream.frames[0].data.streamId
  const refused = await app.inject({ method: 'POST', url: `/api/stream/${streamId}/cancel`, headers: other })
  t.equal(refused.statusCode, 403, 'another caller may not cancel')
  const missing = await app.inject({
    method: 'POST',
    url: '/api/stream/st_000000000000000000000000/cancel',
    headers: premium
  })
  t.equal(missing.statusCode, 404)
  const aborted = gemini.waitForAbort()
  const res = await app.inject({ method: 'POST', url: `/api/stream/${streamId}/cancel`, headers: premium })
  t.same(res.json(), { success: true, streamId, status: 'cancelled' })
  t.ok(await within(aborted, 1000, null), 'upstream aborted within one second')
  const frames = await stream.finished()
  t.match(frames.at(-1), { event: 'error', data: { code: 'CANCELLED', recoverable: false } })
  t.same(frames.map(seqOf), frames.map((_f, i) => i + 1))
  t.match(await ledgerRows(app, streamId), [{ status: 'cancelled', estimated: true }])
  t.equal(await activeGauge(app, 'travel'), 0)
  const again = await app.inject({ method: 'POST', url: `/api/stream/${streamId}/cancel`, headers: premium })
  t.equal(again.json().status, 'already-finished')

  const second = await openSse(`${url}/api/stream/blog`, { headers: premium, body: ROUTES.blog.input })
  await second.until(frames => frames.length > 0, 'connected')
  const byAdmin = await app.inject({
    method: 'POST',
    url: `/api/stream/${second.frames[0].data.streamId}/cancel`,
    headers: admin
  })
  t.equal(byAdmin.json().status, 'cancelled', 'agent:manage may cancel any stream')
  await second.finished()
})

t.test("onDisconnect 'continue': the generation outlives the client; resume replays and follows live", async t => {
  const { gemini, app, url } = await geminiApp(t)
  const first = await openSse(`${url}/api/stream/social`, {
    headers: premium,
    body: { ...ROUTES.social.input, onDisconnect: 'continue' }
  })
  await first.until(frames => frames.filter(f => f.event === 'token').length >= 2, 'two tokens')
  const streamId = first.frames[0].data.streamId
  // Pretend the client saw only the first token (the rest was in flight when it went away).
  const seen = first.frames.slice(0, first.frames.findIndex(f => f.event === 'token') + 1)
  const lastSeen = seen.at(-1)!.id!
  first.destroy()
  await until(() => app.streams.service.connections.size === 0)
  t.ok(app.streams.registry.get(streamId), 'still generating after the client left')
  t.equal(gemini.aborted.length, 0, 'upstream not aborted')

  const resumed = await openSse(`${url}/api/stream/${streamId}/events`, {
    headers: { ...premium, 'last-event-id': lastSeen }
  })
  t.equal(resumed.status, 200)
  await resumed.until(frames => frames.some(f => f.event === 'token'), 'the missed token')
  t.equal(resumed.frames[0].id, `${streamId}-${seqOf(seen.at(-1)!) + 1}`, 'resumes right after Last-Event-ID')
  t.equal(
    (await app.inject({ url: `/api/stream/${streamId}/events`, headers: { ...other, 'last-event-id': lastSeen } }))
      .statusCode,
    403,
    'only the owner may resume'
  )
  await app.inject({ method: 'POST', url: `/api/stream/${streamId}/cancel`, headers: premium })
  const frames = await resumed.finished()
  t.match(frames.at(-1), { event: 'error', data: { code: 'CANCELLED' } }, 'the live follower sees the end')
  const all = [...seen, ...frames]
  t.same(all.map(seqOf), all.map((_f, i) => i + 1), 'nothing lost or repeated across the two connections')
})

t.test('caps: the (N+1)th stream of a caller gets 429 + Retry-After, the process cap 503', async t => {
  const { app, url } = await geminiApp(t, {
    MAX_CONCURRENT_STREAMS_PER_CALLER: '2',
    MAX_CONCURRENT_STREAMS: '3',
    STREAM_HEARTBEAT_MS: '50'
  })
  const open = async (headers: Record<string, string>) => {
    const stream = await openSse(`${url}/api/stream/blog`, { headers, body: ROUTES.blog.input })
    if (stream.status === 200) await stream.until(frames => frames.length > 0, 'connected')
    return stream
  }
  const a1 = await open(premium)
  const a2 = await open(premium)
  const a3 = await open(premium)
  t.equal(a3.status, 429)
  t.equal(a3.headers['retry-after'], '5')
  t.match(await jsonOf(a3), { code: 'AMK_TOO_MANY_STREAMS', details: { limit: 2, scope: 'caller' } })
  const b1 = await open(other)
  t.equal(b1.status, 200, 'another caller is not affected')
  const b2 = await open(other)
  t.equal(b2.status, 503, 'the process cap')
  t.equal(b2.headers['retry-after'], '5')
  t.match(await jsonOf(b2), { code: 'AMK_SERVICE_UNAVAILABLE', details: { scope: 'process', limit: 3 } })
  await a1.until(() => a1.comments.includes('heartbeat'), 'a heartbeat')
  t.pass('idle streams get comment heartbeats (STREAM_HEARTBEAT_MS)')
  a1.destroy()
  await until(() => app.streams.registry.openSlots === 2)
  const a4 = await open(premium)
  t.equal(a4.status, 200, 'a freed slot is usable again')
  for (const s of [a2, b1, a4]) s.destroy()
  await until(() => app.streams.registry.openSlots === 0)
})

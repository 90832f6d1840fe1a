// Acceptance 4 and 6: two app instances on one real Redis. A stream started on A and left at event k
// resumes on B with Last-Event-ID (k+1…n exactly once), replayed with XRANGE and followed live with
// XREAD; a cancel sent to B aborts the generation on A; tickets work on either. Shutdown (app.close(),
// what SIGTERM runs): every open client gets SHUTTING_DOWN with its last event id, the upstream call is
// aborted, and the resume on B gets the rest of the log, ending with GENERATION_INTERRUPTED — which a
// follower on B also writes itself when A dies without shutting down (SIGKILL: A's lease lapses).
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { startGeminiServer, type GeminiRequest, type GeminiServer } from '../fixtures/gemini-server.js'
import { modelAnswer, ownRedis } from '../agents/support.js'
import { openSse, parseSse, type Frame } from './sse-client.js'
import {
  admin,
  buildStreams,
  checkStream,
  listen,
  other,
  premium,
  ROUTES,
  seqOf,
  STREAM_ENV,
  until,
  within
} from './support.js'
import { needs, postgresDatabase, REDIS_URL, redisPrefix } from '../support.js'
import { startServer } from '../child-server.js'

const answer = (request: GeminiRequest) => JSON.stringify((modelAnswer(request) as { json: unknown }).json)

async function twoReplicas (t: Test, respond: (request: GeminiRequest) => ReturnType<GeminiServer['respond']>) {
  const gemini = await startGeminiServer(respond)
  t.teardown(() => gemini.close())
  const env = { REDIS_URL, REDIS_KEY_PREFIX: redisPrefix(), GEMINI_API_KEY: 'test-key', GEMINI_BASE_URL: gemini.url }
  const a = await buildStreams(t, { env })
  const b = await buildStreams(t, { env })
  return { gemini, a, b, urlA: await listen(a), urlB: await listen(b) }
}

/** The whole log of a stream as another replica reads it from Redis. */
const logOf = async (app: FastifyInstance, streamId: string) => app.streams.log.read(streamId, 0)
const contiguous = (frames: Frame[]) => frames.every((f, i) => seqOf(f) === i + 1)

t.test(
  'resume on another replica: events k+1…n exactly once, replayed from Redis',
  { skip: needs('redis') },
  async t => {
    const { a, b, urlA, urlB } = await twoReplicas(t, request => ({ text: answer(request), chunks: 40 }))
    t.equal(a.streams.log.kind, 'redis')
    const first = await openSse(`${urlA}/api/stream/social`, {
      headers: premium,
      body: { ...ROUTES.social.input, onDisconnect: 'continue' }
    })
    await first.until(frames => frames.length >= 6, 'six events')
    first.destroy()
    const seen = first.frames.slice(0, 6)
    const streamId = seen[0].data.streamId
    await until(() => a.streams.registry.active() === 0)
    t.equal(b.streams.registry.get(streamId), undefined, 'B never ran it')

    t.equal(
      (await b.inject({ url: `/api/stream/${streamId}/events`, headers: { ...other, 'last-event-id': seen[5].id! } }))
        .statusCode,
      403,
      'only the owner, on B too'
    )
    const res = await b.inject({
      url: `/api/stream/${streamId}/events`,
      headers: { ...premium, 'last-event-id': seen[5].id! }
    })
    t.equal(res.statusCode, 200)
    const rest = parseSse(res.body).frames
    const all = [...seen, ...rest]
    t.ok(contiguous(all), 'events 1…6 on A, 7…n on B: nothing lost or repeated')
    t.equal(rest.at(-1)?.event, 'complete')
    t.same(
      all.map(f => f.id),
      (await logOf(b, streamId)).map(e => `${streamId}-${e.seq}`),
      'exactly the log'
    )
    const viaB = await openSse(`${urlB}/api/stream/social?${ROUTES.social.query}`, {
      headers: { ...premium, 'last-event-id': seen[5].id! }
    })
    t.same(
      (await viaB.finished()).map(f => f.id),
      rest.map(f => f.id),
      'the same through a start URL (EventSource reconnect)'
    )
  }
)

t.test(
  'live follow on B (XREAD BLOCK) and a cancel sent to B that aborts the generation on A',
  { skip: needs('redis') },
  async t => {
    const { gemini, a, b, urlA, urlB } = await twoReplicas(t, request => ({
      text: answer(request),
      chunks: 20,
      stallAfter: 3
    }))
    const first = await openSse(`${urlA}/api/stream/blog`, {
      headers: premium,
      body: { ...ROUTES.blog.input, onDisconnect: 'continue' }
    })
    await first.until(frames => frames.filter(f => f.event === 'token').length >= 3, 'three tokens')
    first.destroy()
    const seen = first.frames.slice(0, 2)
    const streamId = seen[0].data.streamId
    const follower = await openSse(`${urlB}/api/stream/${streamId}/events`, {
      headers: { ...premium, 'last-event-id': seen[1].id! }
    })
    await follower.until(frames => frames.filter(f => f.event === 'token').length >= 3, 'the replayed tokens')
    t.ok(a.streams.registry.get(streamId), 'still generating on A')

    const aborted = gemini.waitForAbort()
    const cancel = await b.inject({ method: 'POST', url: `/api/stream/${streamId}/cancel`, headers: premium })
    t.same(
      cancel.json(),
      { success: true, streamId, status: 'cancel-requested' },
      'B does not run it: it tells the others'
    )
    t.ok(await within(aborted, 1000, null), 'the generation on A is aborted (upstream closed) within a second')
    const rest = await follower.finished()
    t.match(rest.at(-1), { event: 'error', data: { code: 'CANCELLED' } }, 'B delivered the end live')
    t.ok(contiguous([...seen, ...rest]))
  }
)

t.test('a ticket issued on A starts a stream there and resumes it on B', { skip: needs('redis') }, async t => {
  const { a, b } = await twoReplicas(t, request => ({ text: answer(request), chunks: 10 }))
  const { ticket } = (await a.inject({ method: 'POST', url: '/api/stream/tickets', headers: premium })).json()
  const url = `/api/stream/itinerary?${ROUTES.itinerary.query}&ticket=${ticket}`
  const started = await a.inject({ url })
  const frames = parseSse(started.body).frames
  t.equal(frames.at(-1)?.event, 'complete')
  const streamId = frames[0].data.streamId
  t.equal((await b.inject({ url })).statusCode, 401, 'used: B will not start a second stream with it')
  const resumed = await b.inject({ url, headers: { 'last-event-id': `${streamId}-2` } })
  t.equal(resumed.statusCode, 200)
  t.same(parseSse(resumed.body).frames.map(f => f.id), frames.slice(2).map(f => f.id))
})

t.test(
  'shutdown: SHUTTING_DOWN with the last event id, upstream aborted, resume on B without loss',
  { skip: needs('redis') },
  async t => {
    const { gemini, a, b, urlA } = await twoReplicas(t, request => ({
      text: answer(request),
      chunks: 20,
      stallAfter: 4
    }))
    const reading = await openSse(`${urlA}/api/stream/blog`, { headers: premium, body: ROUTES.blog.input })
    const detached = await openSse(`${urlA}/api/stream/social`, {
      headers: premium,
      body: { ...ROUTES.social.input, onDisconnect: 'continue' }
    })
    await reading.until(frames => frames.filter(f => f.event === 'token').length >= 4, 'four tokens')
    await detached.until(frames => frames.length >= 3, 'three events')
    detached.destroy()
    const detachedSeen = detached.frames.slice(0, 3)
    await until(() => a.streams.service.connections.size === 1)

    let stateWhenTold = ''
    const told = reading
      .until(frames => frames.some(f => f.data.code === 'SHUTTING_DOWN'), 'SHUTTING_DOWN')
      .then(() => {
        stateWhenTold = a.lifecycle.state
      })
    const closing = a.close()
    await told
    const notice = reading.frames.at(-1)!
    const delivered = reading.frames.slice(0, -1)
    t.equal(stateWhenTold, 'shutting-down', 'readiness already fails when clients are told')
    t.match(notice, {
      event: 'error',
      data: { code: 'SHUTTING_DOWN', recoverable: true, lastEventId: delivered.at(-1)!.id }
    })
    t.equal(notice.id, delivered.at(-1)!.id, 'the notice carries the last delivered id, so Last-Event-ID is unchanged')
    await reading.finished()
    t.ok(reading.ended, 'the response is ended')
    await closing
    t.ok(
      await within(
        until(() => gemini.aborted.length === 2),
        1000,
        false
      ),
      'both upstream calls were aborted'
    )

    for (const [seen, route] of [
      [delivered, 'blog'],
      [detachedSeen, 'social']
    ] as const) {
      const streamId = seen[0].data.streamId
      const res = await b.inject({
        url: `/api/stream/${streamId}/events`,
        headers: { ...premium, 'last-event-id': seen.at(-1)!.id! }
      })
      t.equal(res.statusCode, 200, `${route} resumes on B`)
      const rest = parseSse(res.body).frames
      t.ok(contiguous([...seen, ...rest]), `${route}: nothing lost or repeated`)
      t.match(
        rest.at(-1),
        { event: 'error', data: { code: 'GENERATION_INTERRUPTED', recoverable: false } },
        `${route}: a clear end`
      )
      t.same(
        [...seen, ...rest].map(f => f.id),
        (await logOf(b, streamId)).map(e => `${streamId}-${e.seq}`)
      )
    }
    const stats = (await b.inject({ url: '/api/stream/stats/content', headers: admin })).json()
    t.equal(stats.active, 0, 'B runs nothing: it only served the logs')
  }
)

t.test(
  'a replica killed mid-stream (SIGKILL): the follower on B gets GENERATION_INTERRUPTED, not heartbeats forever',
  { skip: needs('redis') || needs('postgres') },
  async t => {
    const gemini = await startGeminiServer(request => ({ text: answer(request), chunks: 20, stallAfter: 3 }))
    t.teardown(() => gemini.close())
    // Replicas share Redis and the database (the same API key is the same caller on both).
    const env = {
      REDIS_URL,
      REDIS_KEY_PREFIX: redisPrefix(),
      DATABASE_URL: await postgresDatabase(),
      GEMINI_API_KEY: 'test-key',
      GEMINI_BASE_URL: gemini.url,
      STREAM_HEARTBEAT_MS: '200'
    }
    // A is the real server in its own process, so it can die without running any shutdown code.
    const a = await startServer(t, ['--import=tsx', 'src/server.ts'], {
      ...STREAM_ENV,
      ...env,
      NODE_ENV: 'test',
      LOG_LEVEL: 'warn'
    })
    const b = await buildStreams(t, { db: null, env })
    const urlB = await listen(b)

    const first = await openSse(`http://127.0.0.1:${a.port}/api/stream/blog`, {
      headers: premium,
      body: { ...ROUTES.blog.input, onDisconnect: 'continue' }
    })
    await first.until(frames => frames.filter(f => f.event === 'token').length >= 3, 'three tokens from A')
    first.destroy()
    const seen = first.frames.slice(0, 2)
    const follower = await openSse(`${urlB}/api/stream/${seen[0].data.streamId}/events`, {
      headers: { ...premium, 'last-event-id': seen[1].id! }
    })
    await follower.until(frames => frames.filter(f => f.event === 'token').length >= 3, 'the replayed tokens on B')
    await new Promise(resolve => setTimeout(resolve, 1000)) // longer than A's lease (3 × 200 ms): A renews it
    t.notOk(
      follower.frames.some(f => f.event === 'error'),
      "a live but quiet replica's stream stays open"
    )

    a.child.kill('SIGKILL')
    const rest = await within(follower.finished(), 10_000, null)
    t.ok(rest, 'the follow ended')
    t.match(rest?.at(-1), { event: 'error', data: { code: 'GENERATION_INTERRUPTED', recoverable: false } })
    t.ok(contiguous([...seen, ...(rest ?? [])]), 'nothing lost or repeated')
    const again = await b.inject({
      url: `/api/stream/${seen[0].data.streamId}/events`,
      headers: { ...premium, 'last-event-id': rest!.at(-1)!.id! }
    })
    t.equal(again.statusCode, 204, 'a reconnect after the end is told to stop')
  }
)

t.test('shutdown without Redis: clients are told and close() does not wait on open streams', async t => {
  const gemini = await startGeminiServer(request => ({ text: answer(request), chunks: 20, stallAfter: 2 }))
  t.teardown(() => gemini.close())
  const app = await buildStreams(t, { env: { GEMINI_API_KEY: 'test-key', GEMINI_BASE_URL: gemini.url } })
  const url = await listen(app)
  const streams = await Promise.all(
    [1, 2, 3].map(() => openSse(`${url}/api/stream/blog`, { headers: premium, body: ROUTES.blog.input }))
  )
  await Promise.all(streams.map(s => s.until(frames => frames.some(f => f.event === 'token'), 'a token')))
  await app.close()
  for (const stream of streams) {
    const frames = await stream.finished()
    t.match(frames.at(-1), { event: 'error', data: { code: 'SHUTTING_DOWN', recoverable: true } })
  }
  t.ok(await within(until(() => gemini.aborted.length === 3), 1000, false), 'every upstream call was aborted')
  const rows = await app.db.query('SELECT status FROM usage_ledger')
  t.same(
    rows.map(r => r.status),
    ['cancelled', 'cancelled', 'cancelled'],
    'ledger rows written before the database closed'
  )
})

t.test(
  'Redis down: streams start, complete and resume here from the local log; elsewhere is 503',
  { skip: needs('redis') },
  async t => {
    const redis = await ownRedis(t)
    const app = await buildStreams(t, { env: { REDIS_URL: redis.url, REDIS_KEY_PREFIX: redisPrefix() } })
    await redis.stop()
    const res = await app.inject({
      method: 'POST',
      url: '/api/stream/blog',
      headers: premium,
      payload: ROUTES.blog.input
    })
    t.equal(res.statusCode, 200)
    const { streamId } = checkStream(t, parseSse(res.body).frames, 'blog')
    const resumed = await app.inject({
      url: `/api/stream/${streamId}/events`,
      headers: { ...premium, 'last-event-id': `${streamId}-3` }
    })
    t.equal(resumed.statusCode, 200, 'this instance still holds the stream')
    t.equal(parseSse(resumed.body).frames[0].id, `${streamId}-4`)
    const ticket = await app.inject({ method: 'POST', url: '/api/stream/tickets', headers: premium })
    t.equal(ticket.statusCode, 201, 'tickets fall back to this instance')
    const started = await app.inject({
      url: `/api/stream/social?${ROUTES.social.query}&ticket=${ticket.json().ticket}`
    })
    t.equal(started.statusCode, 200)
    const elsewhere = await app.inject({ url: '/api/stream/st_0000000000000000000000aa/events', headers: premium })
    t.equal(elsewhere.statusCode, 503, 'a stream from another replica cannot be looked up')
    t.match(elsewhere.json(), { code: 'AMK_SERVICE_UNAVAILABLE' })
    t.ok(elsewhere.headers['retry-after'])
  }
)

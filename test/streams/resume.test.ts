// Resume on one instance (exact replay after Last-Event-ID, 410 for foreign, unknown and expired
// positions) and one-time tickets for EventSource: a ticket starts one stream, then only resumes it.
import t from 'tap'
import { createOfflineProvider } from '../../src/llm/offline.js'
import { parseSse } from './sse-client.js'
import { bigBlogPost, buildStreams, checkStream, other, premium, ROUTES, user } from './support.js'

t.test('resume on one instance: exact replay, lastEventId query, foreign or expired positions', async t => {
  const app = await buildStreams(t, { env: { STREAM_REPLAY_TTL: '1' } })
  const done = await app.inject({
    method: 'POST',
    url: '/api/stream/blog',
    headers: premium,
    payload: ROUTES.blog.input
  })
  const { frames: all } = parseSse(done.body)
  const streamId = all[0].data.streamId
  const replay = await app.inject({
    url: `/api/stream/${streamId}/events`,
    headers: { ...premium, 'last-event-id': `${streamId}-5` }
  })
  const { frames } = parseSse(replay.body)
  t.same(frames.map(f => f.id), all.slice(5).map(f => f.id), 'events 6…n exactly')
  const byQuery = await app.inject({
    url: `/api/stream/${streamId}/events?lastEventId=${streamId}-${all.length - 1}`,
    headers: premium
  })
  t.same(parseSse(byQuery.body).frames.map(f => f.event), ['complete'])
  const foreign = await app.inject({
    url: `/api/stream/${streamId}/events`,
    headers: { ...premium, 'last-event-id': 'st_other-3' }
  })
  t.equal(foreign.statusCode, 410)
  const unknown = await app.inject({ url: '/api/stream/st_00000000000000000000dead/events', headers: premium })
  t.match(unknown.json(), { statusCode: 410, code: 'AMK_GONE', details: { reason: 'expired' } })
  await new Promise(resolve => setTimeout(resolve, 1100))
  const expired = await app.inject({
    url: `/api/stream/${streamId}/events`,
    headers: { ...premium, 'last-event-id': `${streamId}-5` }
  })
  t.match(
    expired.json(),
    { statusCode: 410, code: 'AMK_GONE', details: { reason: 'expired' } },
    'after STREAM_REPLAY_TTL'
  )
})

t.test('tickets: bound to the caller, start one stream, then only resume that stream', async t => {
  const app = await buildStreams(t, { env: { STREAM_TICKET_TTL_MS: '1000' } })
  t.equal((await app.inject({ method: 'POST', url: '/api/stream/tickets' })).statusCode, 401)
  t.equal(
    (await app.inject({ method: 'POST', url: '/api/stream/tickets', headers: user })).statusCode,
    403,
    'needs agent:streaming'
  )
  const issued = await app.inject({ method: 'POST', url: '/api/stream/tickets', headers: premium })
  t.equal(issued.statusCode, 201)
  const { ticket, expiresAt, expiresInSeconds } = issued.json()
  t.match(ticket, /^amkt_/)
  t.ok(Date.parse(expiresAt) > Date.now() && expiresInSeconds <= 1)

  const url = `/api/stream/blog?${ROUTES.blog.query}&ticket=${ticket}`
  const started = await app.inject({ url })
  t.equal(started.statusCode, 200, 'the ticket starts a stream (no header credential)')
  const { streamId } = checkStream(t, parseSse(started.body).frames, 'blog')
  const reused = await app.inject({ url })
  t.equal(reused.statusCode, 401, 'a second stream with the same ticket is refused')
  t.match(reused.json().message, /already used/)

  const reconnect = await app.inject({ url, headers: { 'last-event-id': `${streamId}-3` } })
  t.equal(reconnect.statusCode, 200, 'a browser reconnect (same URL + Last-Event-ID) resumes the stream')
  t.equal(parseSse(reconnect.body).frames[0].id, `${streamId}-4`)
  const viaEvents = await app.inject({
    url: `/api/stream/${streamId}/events?ticket=${ticket}&lastEventId=${streamId}-3`
  })
  t.equal(viaEvents.statusCode, 200)
  await new Promise(resolve => setTimeout(resolve, 1100))
  t.equal(
    (await app.inject({ url, headers: { 'last-event-id': `${streamId}-3` } })).statusCode,
    200,
    'after the ticket TTL it still resumes its stream (until the replay TTL)'
  )

  const elsewhere = await app.inject({
    method: 'POST',
    url: '/api/stream/itinerary',
    headers: premium,
    payload: ROUTES.itinerary.input
  })
  const otherId = parseSse(elsewhere.body).frames[0].data.streamId
  const foreign = await app.inject({ url: `/api/stream/${otherId}/events?ticket=${ticket}` })
  t.equal(foreign.statusCode, 401, 'not for another stream, even of the same caller')
  t.equal(
    (await app.inject({ method: 'POST', url: `/api/stream/blog?ticket=${ticket}`, payload: ROUTES.blog.input }))
      .statusCode,
    401,
    'POST routes take no ticket'
  )
  t.equal((await app.inject({ url: `/api/stream/blog?${ROUTES.blog.query}&ticket=amkt_unknown` })).statusCode, 401)

  const { ticket: late } = (await app.inject({ method: 'POST', url: '/api/stream/tickets', headers: other })).json()
  await new Promise(resolve => setTimeout(resolve, 1100))
  const expired = await app.inject({ url: `/api/stream/blog?${ROUTES.blog.query}&ticket=${late}` })
  t.equal(expired.statusCode, 401, 'an unused ticket expires')
  t.match(expired.json().message, /Unknown or expired stream ticket/)
})

t.test('a position trimmed from the log (STREAM_LOG_MAX_EVENTS) answers 410 gap; the end answers 204', async t => {
  const provider = createOfflineProvider({ build: () => bigBlogPost(2, 1000), chunkSize: 2 })
  const app = await buildStreams(t, { appOptions: { llmProvider: provider }, env: { STREAM_LOG_MAX_EVENTS: '100' } })
  const res = await app.inject({
    method: 'POST',
    url: '/api/stream/blog',
    headers: premium,
    payload: ROUTES.blog.input
  })
  const { frames } = parseSse(res.body)
  t.ok(frames.length > 1000, `${frames.length} events, more than the log keeps`)
  const streamId = frames[0].data.streamId
  const gap = await app.inject({
    url: `/api/stream/${streamId}/events`,
    headers: { ...premium, 'last-event-id': `${streamId}-5` }
  })
  t.equal(gap.statusCode, 410)
  t.match(gap.json(), {
    code: 'AMK_GONE',
    details: { reason: 'gap', firstAvailableId: new RegExp(`^${streamId}-\\d+$`) }
  })
  const firstHeld = Number(gap.json().details.firstAvailableId.split('-').at(-1))
  const tail = await app.inject({
    url: `/api/stream/${streamId}/events`,
    headers: { ...premium, 'last-event-id': `${streamId}-${firstHeld - 1}` }
  })
  t.equal(tail.statusCode, 200, 'right before the oldest event held is still fine')
  t.same(parseSse(tail.body).frames.map(f => f.id), frames.slice(firstHeld - 1).map(f => f.id))
  const end = await app.inject({
    url: `/api/stream/${streamId}/events`,
    headers: { ...premium, 'last-event-id': frames.at(-1)!.id! }
  })
  t.equal(end.statusCode, 204, 'resuming at the end: nothing follows, and EventSource stops on 204')
  const endViaStart = await app.inject({
    url: `/api/stream/blog?${ROUTES.blog.query}`,
    headers: { ...premium, 'last-event-id': frames.at(-1)!.id! }
  })
  t.equal(endViaStart.statusCode, 204)
})

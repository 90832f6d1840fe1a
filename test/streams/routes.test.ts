// Acceptance 1: every stream route, through the offline provider and through the real Gemini SDK
// against the local Gemini server, delivers the §8 events (connected, progress, tokens, partial/post,
// result, usage, complete) with strictly increasing ids, and the tokens concatenate to the final text.
// Also: the GET forms (EventSource), headers, policy, validation, metrics and stats.
import t from 'tap'
import { parseSse } from './sse-client.js'
import { startGeminiServer } from '../fixtures/gemini-server.js'
import { modelAnswer } from '../agents/support.js'
import { admin, buildStreams, checkStream, premium, ROUTES, user, type RouteName } from './support.js'
import { helmetHeaders } from '../../src/plugins/security.js'

const names = Object.keys(ROUTES) as RouteName[]

t.test('stream routes send the security headers: on the stream, a resume and an error before it', async t => {
  const app = await buildStreams(t)
  const started = await app.inject({ method: 'POST', url: '/api/stream/blog', headers: premium, payload: ROUTES.blog.input })
  const { streamId } = checkStream(t, parseSse(started.body).frames, 'blog')
  const responses = {
    'POST stream': started,
    'GET stream': await app.inject({ url: `/api/stream/blog?${ROUTES.blog.query}`, headers: premium }),
    resume: await app.inject({ url: `/api/stream/${streamId}/events`, headers: { ...premium, 'last-event-id': `${streamId}-0` } }),
    unauthenticated: await app.inject({ method: 'POST', url: '/api/stream/blog', payload: ROUTES.blog.input })
  }
  t.equal(responses.unauthenticated.statusCode, 401)
  for (const [what, res] of Object.entries(responses)) {
    for (const [name, value] of helmetHeaders()) t.equal(res.headers[name.toLowerCase()], value, `${what}: ${name}`)
  }
})

t.test('offline provider: each POST route streams the whole §8 sequence', async t => {
  const app = await buildStreams(t)
  for (const route of names) {
    const res = await app.inject({
      method: 'POST',
      url: `/api/stream/${route}`,
      headers: { ...premium, 'accept-encoding': 'gzip, br' },
      payload: ROUTES[route].input
    })
    t.equal(res.statusCode, 200, route)
    t.equal(res.headers['content-type'], 'text/event-stream; charset=utf-8')
    t.equal(res.headers['cache-control'], 'no-cache, no-transform')
    t.equal(res.headers['x-accel-buffering'], 'no')
    t.equal(res.headers['content-encoding'], undefined, 'never compressed')
    t.ok(res.headers['x-request-id'], 'the usual headers still go out')
    const parsed = parseSse(res.body)
    t.equal(parsed.retry, 100, 'retry: hint for EventSource')
    t.equal(parsed.rest, '', 'ends on a frame boundary')
    const { result } = checkStream(t, parsed.frames, route)
    t.equal(parsed.frames.find(f => f.event === 'usage')?.data.model, 'offline')
    if (route === 'itinerary') t.match(JSON.stringify(result), /Kyoto/)
  }
  const metrics = (await app.inject({ url: '/api/metrics', headers: admin })).body
  t.match(metrics, /stream_sessions_total\{agent="content",status="completed"\} 2/)
  t.match(metrics, /stream_sessions_total\{agent="travel",status="completed"\} 2/)
  t.match(metrics, /stream_sessions_active\{agent="travel"\} 0/)
  t.match(metrics, /stream_duration_seconds_count\{agent="content",status="completed"\} 2/)
  const stats = (await app.inject({ url: '/api/stream/stats/content', headers: admin })).json()
  t.match(stats, { agent: 'content', active: 0, started: 2, completed: 2, cancelled: 0, eventLog: 'memory' })
  t.ok(stats.tokens > 0 && stats.averageTimeToFirstTokenMs !== null)
  const agentMetrics = (await app.inject({ url: '/api/agents/content/metrics', headers: admin })).json()
  t.match(agentMetrics.streams, { active: 0, started: 2 }, 'the management API counts the streams too')
})

t.test('real Gemini SDK against the local Gemini server: the same sequence from its SSE chunks', async t => {
  const gemini = await startGeminiServer(request => ({ ...modelAnswer(request), chunks: 25 }))
  t.teardown(() => gemini.close())
  const app = await buildStreams(t, { env: { GEMINI_API_KEY: 'test-key', GEMINI_BASE_URL: gemini.url } })
  for (const route of names) {
    const res = await app.inject({
      method: 'POST',
      url: `/api/stream/${route}`,
      headers: premium,
      payload: ROUTES[route].input
    })
    t.equal(res.statusCode, 200, route)
    const { frames } = parseSse(res.body)
    checkStream(t, frames, route)
    t.match(frames.find(f => f.event === 'usage')?.data, { model: /^gemini-2\.5-(flash|pro)$/ })
    t.ok(gemini.requests.at(-1)?.stream, 'streamGenerateContent was called')
    t.ok(frames.filter(f => f.event === 'token').length >= 20, 'tokens follow the upstream chunks')
  }
  t.equal(gemini.requests.length, 4)
  const ledger = await app.db.query<{ stream_id: string; status: string }>(
    'SELECT stream_id, status FROM usage_ledger ORDER BY id'
  )
  t.equal(ledger.length, 4)
  t.ok(
    ledger.every(row => row.status === 'success' && row.stream_id?.startsWith('st_')),
    'each ledger row names its stream'
  )
})

t.test('GET forms for EventSource: query parameters, arrays repeated or comma-separated', async t => {
  const app = await buildStreams(t)
  for (const route of names) {
    const res = await app.inject({ url: `/api/stream/${route}?${ROUTES[route].query}`, headers: premium })
    t.equal(res.statusCode, 200, route)
    const { result } = checkStream(t, parseSse(res.body).frames, route)
    if (route === 'social') {
      t.same(
        [...new Set(result.posts.map((p: any) => p.platform))].sort(),
        ['linkedin', 'twitter'],
        'comma-separated array'
      )
    }
    if (route === 'itinerary') t.match(JSON.stringify(result), /temples/, 'repeated parameter array')
  }
  const unknown = await app.inject({ url: '/api/stream/blog?topic=Lisbon+food&bogus=1', headers: premium })
  t.equal(unknown.statusCode, 400)
  t.match(unknown.json(), { code: 'AMK_VALIDATION', details: [{ field: 'query.bogus' }] })
  const objectField = await app.inject({ url: '/api/stream/blog?topic=Lisbon+food&context=x', headers: premium })
  t.equal(objectField.statusCode, 400, 'object-valued inputs (context) need POST')
  const head = await app.inject({ method: 'HEAD', url: `/api/stream/blog?${ROUTES.blog.query}`, headers: premium })
  t.equal(head.statusCode, 405, 'HEAD never starts a generation: 405, GET and POST only')
  const badType = await app.inject({ url: '/api/stream/recommendations?interests=food&budget=cheap', headers: premium })
  t.match(badType.json(), { statusCode: 400, details: [{ field: 'query.budget' }] })
})

t.test('policy and validation answer as JSON before any stream opens', async t => {
  const app = await buildStreams(t)
  const none = await app.inject({ method: 'POST', url: '/api/stream/blog', payload: { topic: 'Lisbon' } })
  t.equal(none.statusCode, 401)
  const forbidden = await app.inject({
    method: 'POST',
    url: '/api/stream/blog',
    headers: user,
    payload: { topic: 'Lisbon' }
  })
  t.equal(forbidden.statusCode, 403)
  t.match(forbidden.json(), { code: 'AMK_FORBIDDEN', message: /agent:streaming/ })
  const invalid = await app.inject({
    method: 'POST',
    url: '/api/stream/blog',
    headers: premium,
    payload: { topic: 'x', bogus: true, onDisconnect: 'later' }
  })
  t.equal(invalid.statusCode, 400)
  t.same(
    invalid
      .json()
      .details.map((d: { field: string }) => d.field)
      .sort(),
    ['body.bogus', 'body.onDisconnect', 'body.topic']
  )
  t.equal(invalid.headers['content-type'], 'application/json; charset=utf-8')
  const stats = await app.inject({ url: '/api/stream/stats/nobody', headers: admin })
  t.equal(stats.statusCode, 404)
  t.same(stats.json().details, { availableAgents: ['travel', 'content', 'innovation'] })
  const statsForbidden = await app.inject({ url: '/api/stream/stats/travel', headers: premium })
  t.equal(statsForbidden.statusCode, 403)
  const cleanup = await app.inject({ method: 'POST', url: '/api/stream/cleanup', headers: premium, payload: {} })
  t.equal(cleanup.statusCode, 403)
  const cleaned = await app.inject({
    method: 'POST',
    url: '/api/stream/cleanup',
    headers: admin,
    payload: { maxIdleSeconds: 0 }
  })
  t.same(cleaned.json(), { success: true, cancelled: 0, expiredLogs: 0, active: 0 })
})

t.test('OpenAPI: stream routes declare text/event-stream for 200', async t => {
  const app = await buildStreams(t)
  const doc = (await app.inject('/openapi.json')).json()
  for (const path of ['/api/stream/blog', '/api/stream/social', '/api/stream/{streamId}/events']) {
    const get = doc.paths[path].get ?? doc.paths[path].post
    t.ok(get.responses['200'].content['text/event-stream'], `${path} declares text/event-stream`)
  }
  t.ok(doc.components.schemas.StreamEvent, 'the event union is a named component')
  t.equal(doc.paths['/api/stream/blog'].post.operationId, 'stream_blog')
})

t.test('Cache-Control: no-cache bypasses the response cache on a stream route, as on invoke routes', async t => {
  const app = await buildStreams(t)
  const usageOf = async (headers: Record<string, string>) => {
    const res = await app.inject({
      method: 'POST', url: '/api/stream/blog', headers: { ...premium, ...headers }, payload: ROUTES.blog.input
    })
    t.equal(res.statusCode, 200)
    return parseSse(res.body).frames.find(f => f.event === 'usage')?.data
  }
  const first = await usageOf({})
  t.ok(first.inputTokens > 0, 'the first stream calls the provider')
  t.equal((await usageOf({})).inputTokens, 0, 'the same input again is served from the cache')
  const bypassed = await usageOf({ 'cache-control': 'no-cache' })
  t.equal(bypassed.inputTokens, first.inputTokens, 'no-cache calls the provider again')
  t.equal((await usageOf({ 'cache-control': 'no-store' })).inputTokens, first.inputTokens, 'so does no-store')
})

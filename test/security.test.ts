// Security headers (helmet), CORS limited to ALLOWED_ORIGINS, and compression that applies to large
// JSON and never to text/event-stream.
import t from 'tap'
import { Readable } from 'node:stream'
import { gunzipSync } from 'node:zlib'
import type { FastifyInstance } from 'fastify'
import { build } from './support.js'

const bigItems = Array.from({ length: 500 }, (_, i) => ({
  id: i,
  name: `item number ${i}`,
  tags: ['travel', 'content']
}))

function testRoutes (app: FastifyInstance) {
  app.get('/test/big', { config: { public: true } }, async () => ({ items: bigItems }))
  app.get('/test/small', { config: { public: true } }, async () => ({ ok: true }))
  // An SSE response the way a stream route sends one: a stream of `id/event/data` frames, well over the threshold.
  app.get('/test/sse', { config: { public: true } }, async (_request, reply) => {
    const frames = Array.from(
      { length: 200 },
      (_, i) => `id: s-${i}\nevent: token\ndata: ${JSON.stringify({ chunk: 'lorem ipsum '.repeat(4), index: i })}\n\n`
    )
    reply.header('cache-control', 'no-cache, no-transform').type('text/event-stream')
    return reply.send(Readable.from(frames))
  })
  app.get('/test/sse-string', { config: { public: true } }, async (_request, reply) =>
    reply.type('text/event-stream; charset=utf-8').send(`data: ${'x'.repeat(5000)}\n\n`))
}

t.test('helmet security headers on every response', async t => {
  const app = await build(t)
  for (const url of ['/api/status', '/api/does-not-exist']) {
    const res = await app.inject(url)
    t.equal(res.headers['x-content-type-options'], 'nosniff', url)
    t.match(res.headers['strict-transport-security'], /max-age=\d+/)
    t.equal(res.headers['x-frame-options'], 'SAMEORIGIN')
    t.equal(res.headers['referrer-policy'], 'no-referrer')
    t.equal(res.headers['cross-origin-opener-policy'], 'same-origin')
    t.match(res.headers['content-security-policy'], "default-src 'self'")
    t.match(res.headers['content-security-policy'], "frame-ancestors 'none'")
    t.notOk(res.headers['x-powered-by'])
  }
})

t.test('CORS answers only the allowed origins', async t => {
  const app = await build(t, { env: { ALLOWED_ORIGINS: 'https://app.example.com, https://admin.example.com' } })
  const preflight = (origin: string) =>
    app.inject({
      method: 'OPTIONS',
      url: '/api/status',
      headers: {
        origin,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type,x-api-key'
      }
    })
  const allowed = await preflight('https://app.example.com')
  t.equal(allowed.statusCode, 204)
  t.equal(allowed.headers['access-control-allow-origin'], 'https://app.example.com')
  t.equal(allowed.headers['access-control-allow-credentials'], 'true')
  t.match(allowed.headers['access-control-allow-headers'], 'x-api-key')
  t.match(allowed.headers['access-control-allow-methods'], 'POST')

  const other = await preflight('https://evil.example.net')
  t.notOk(other.headers['access-control-allow-origin'], 'no ACAO for an unlisted origin')

  const simple = await app.inject({ url: '/api/status', headers: { origin: 'https://admin.example.com' } })
  t.equal(simple.headers['access-control-allow-origin'], 'https://admin.example.com')
  t.match(simple.headers['access-control-expose-headers'], 'x-request-id')
  t.match(simple.headers.vary, /Origin/i)
  const denied = await app.inject({ url: '/api/status', headers: { origin: 'https://evil.example.net' } })
  t.notOk(denied.headers['access-control-allow-origin'])
})

t.test('CORS: no ALLOWED_ORIGINS means no cross-origin access; * means any origin, without credentials', async t => {
  const closed = await build(t)
  const res = await closed.inject({ url: '/api/status', headers: { origin: 'https://app.example.com' } })
  t.notOk(res.headers['access-control-allow-origin'])
  t.notOk(res.headers.vary, 'no CORS at all: not even Vary: Origin')
  const preflight = await closed.inject({
    method: 'OPTIONS',
    url: '/api/status',
    headers: { origin: 'https://app.example.com', 'access-control-request-method': 'GET' }
  })
  t.equal(preflight.statusCode, 404, 'a preflight finds no route')
  t.equal(preflight.json().code, 'AMK_ROUTE_NOT_FOUND', 'in the error shape')
  t.notOk(preflight.headers['access-control-allow-origin'])

  const open = await build(t, { env: { ALLOWED_ORIGINS: '*' } })
  const any = await open.inject({ url: '/api/status', headers: { origin: 'https://anything.example' } })
  t.equal(any.headers['access-control-allow-origin'], 'https://anything.example', 'any origin is answered (reflected)')
  t.notOk(any.headers['access-control-allow-credentials'])
})

t.test('compression: large JSON is compressed, small JSON is not', async t => {
  const app = await build(t, { before: testRoutes })
  const big = await app.inject({ url: '/test/big', headers: { 'accept-encoding': 'gzip' } })
  t.equal(big.statusCode, 200)
  t.equal(big.headers['content-encoding'], 'gzip')
  t.same(JSON.parse(gunzipSync(big.rawPayload).toString()), { items: bigItems })
  t.ok(big.rawPayload.length < JSON.stringify({ items: bigItems }).length / 3, 'much smaller on the wire')

  const br = await app.inject({ url: '/test/big', headers: { 'accept-encoding': 'br, gzip' } })
  t.equal(br.headers['content-encoding'], 'br')

  const small = await app.inject({ url: '/test/small', headers: { 'accept-encoding': 'gzip' } })
  t.notOk(small.headers['content-encoding'], 'below the threshold')
  const none = await app.inject({ url: '/test/big' })
  t.notOk(none.headers['content-encoding'], 'only when the client accepts it')
})

t.test('compression never touches text/event-stream', async t => {
  const app = await build(t, { before: testRoutes })
  for (const url of ['/test/sse', '/test/sse-string']) {
    const res = await app.inject({
      url,
      headers: { 'accept-encoding': 'gzip, deflate, br', accept: 'text/event-stream' }
    })
    t.equal(res.statusCode, 200, url)
    t.match(res.headers['content-type'], /^text\/event-stream/)
    t.notOk(res.headers['content-encoding'], `${url} is not compressed`)
    t.match(res.body, /^(id: s-0\nevent: token\n)?data: /, 'frames arrive as plain text')
  }
})

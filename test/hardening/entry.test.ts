// Issue 11, found again on the refactored code: inputs that still slipped past the entry checks.
// - An unpaired UTF-16 surrogate ("\ud800" in JSON) anywhere in a body, a key or a query string: PostgreSQL
//   refuses it in jsonb, so a workflow input carrying one answered 500. Now a 400 naming the field, like NUL.
// - Answers Node wrote itself, outside the error shape: HTTP/1.1 without Host (a bare 400), an Expect other
//   than 100-continue (a bare 417), CONNECT (the connection dropped without an answer).
// - A wrong method on an existing path: 405 with Allow (it was a 404 naming the route as unknown).
import t, { type Test } from 'tap'
import net from 'node:net'
import { Value } from 'typebox/value'
import type { FastifyInstance } from 'fastify'
import { build } from '../support.js'
import { ErrorResponseSchema } from '../../src/schemas/common.js'
import { findInputProblem } from '../../src/plugins/input-guard.js'
import { ADMIN_KEY, KEYS_ENV } from '../agents/support.js'

const admin = { 'x-api-key': ADMIN_KEY, 'content-type': 'application/json' }
const FLIGHT = { from: 'Cairo', to: 'Paris', date: '2030-06-01', passengers: 1 }

function assertShape (t: Test, status: number, headers: Record<string, unknown>, body: string, code: string) {
  const parsed = JSON.parse(body)
  t.ok(Value.Check(ErrorResponseSchema, parsed), `error shape: ${body}`)
  t.equal(parsed.statusCode, status)
  t.equal(parsed.code, code)
  t.equal(parsed.requestId, headers['x-request-id'], 'requestId equals x-request-id')
  t.match(String(headers['content-type']), /^application\/json/)
}

t.test('unpaired surrogates: found by the walker, in strings and keys; pairs (emoji) pass', async t => {
  t.equal(findInputProblem({ a: ['ok 😀 𝕳', { b: 'e\u0301' }] }, 'body', 32), null)
  t.match(findInputProblem({ a: [{ b: 'x\ud800' }] }, 'body', 32), {
    field: 'body.a.0.b',
    message: /unpaired surrogates/
  })
  t.match(findInputProblem({ a: '\udfff\ud800' }, 'body', 32), { field: 'body.a' })
  t.match(findInputProblem({ 'k\udc00': 1 }, 'body', 32), { field: 'body.k\udc00', message: /key with control/ })
  t.match(findInputProblem('\ud83d', 'query', 3), { field: 'query' })
})

t.test('an unpaired surrogate is a 400 naming the field wherever it enters, never a database error', async t => {
  const app = await build(t, { env: { ...KEYS_ENV, RATE_LIMIT_GLOBAL_MAX: '0' } })
  // The workflow input is stored as jsonb before the steps run: this one answered 500.
  const cases: Array<[string, string, string]> = [
    [
      '/api/coordinator/parallel',
      JSON.stringify({ tasks: [{ agent: 'travel', method: 'searchFlights' }], input: FLIGHT })
        .replace('"Cairo"', '"Cairo\\ud800"'),
      'body.input.from'
    ],
    [
      '/api/coordinator/sequential',
      JSON.stringify({ steps: [{ agent: 'travel', method: 'searchFlights', input: { ...FLIGHT, note: 'x' } }] })
        .replace('"note"', '"n\\udfffote"'),
      'body.steps.0.input.n\udfffote'
    ],
    ['/api/auth/keys', '{"name":"key \\udbff"}', 'body.name'],
    ['/api/agents/travel/searchFlights', JSON.stringify(FLIGHT).replace('"Paris"', '"\\udc00Paris"'), 'body.to']
  ]
  for (const [url, payload, field] of cases) {
    const res = await app.inject({ method: 'POST', url, headers: admin, payload })
    t.equal(res.statusCode, 400, `${url}: ${res.body.slice(0, 300)}`)
    assertShape(t, 400, res.headers, res.body, 'AMK_VALIDATION')
    t.equal(res.json().details[0].field, field)
  }
  const query = await app.inject({ url: '/api/usage?caller=x%F0%9F', headers: admin })
  t.ok(query.statusCode < 500, `a truncated UTF-8 sequence in the query string: ${query.statusCode}`)
  // Paired surrogates are ordinary text and still work end to end.
  const emoji = await app.inject({
    method: 'POST',
    url: '/api/coordinator/parallel',
    headers: admin,
    payload: { tasks: [{ agent: 'travel', method: 'searchFlights' }], input: { ...FLIGHT, from: 'Cairo 😀' } }
  })
  t.equal(emoji.statusCode, 200, emoji.body.slice(0, 300))
})

interface RawAnswer { status: number, headers: Record<string, string>, body: string }

/** Sends raw bytes and reads the one answer until the server closes the connection. */
function raw (port: number, bytes: string): Promise<RawAnswer | null> {
  return new Promise(resolve => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(bytes))
    let data = ''
    socket.setEncoding('utf8')
    socket.on('data', chunk => { data += chunk })
    socket.on('error', () => {})
    socket.setTimeout(10_000, () => socket.destroy())
    socket.on('close', () => {
      const end = data.indexOf('\r\n\r\n')
      if (end < 0) return resolve(null)
      const [statusLine, ...lines] = data.slice(0, end).split('\r\n')
      const headers = Object.fromEntries(lines.map(line => {
        const colon = line.indexOf(':')
        return [line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()]
      }))
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body: data.slice(end + 4) })
    })
  })
}

async function listening (t: Test): Promise<[FastifyInstance, number]> {
  const app = await build(t, { env: KEYS_ENV })
  await app.listen({ port: 0, host: '127.0.0.1' })
  return [app, (app.server.address() as net.AddressInfo).port]
}

t.test('answers Node used to write itself are in the error shape', async t => {
  const [, port] = await listening(t)
  const cases: Array<[string, string, number, string]> = [
    ['HTTP/1.1 without Host', 'GET /api/status HTTP/1.1\r\nConnection: close\r\n\r\n', 400, 'AMK_BAD_REQUEST'],
    [
      'Expect other than 100-continue',
      'POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: foo\r\n' +
        'Content-Length: 2\r\nConnection: close\r\n\r\n{}',
      417,
      'AMK_EXPECTATION_FAILED'
    ],
    ['CONNECT', 'CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n', 405, 'AMK_METHOD_NOT_ALLOWED']
  ]
  for (const [name, bytes, status, code] of cases) {
    const answer = await raw(port, bytes)
    t.ok(answer, `${name}: answered`)
    if (!answer) continue
    t.equal(answer.status, status, name)
    assertShape(t, status, answer.headers, answer.body, code)
  }
  // HTTP/1.0 needs no Host, and an ordinary request is untouched.
  const old = await raw(port, 'GET /api/status HTTP/1.0\r\n\r\n')
  t.equal(old?.status, 200)
})

t.test('a wrong method on an existing path: 405 with Allow; an unknown path stays 404', async t => {
  const app = await build(t, { env: KEYS_ENV })
  const wrong = await app.inject({ method: 'PUT', url: '/api/agents/list', headers: { 'x-api-key': ADMIN_KEY } })
  t.equal(wrong.statusCode, 405)
  assertShape(t, 405, wrong.headers, wrong.body, 'AMK_METHOD_NOT_ALLOWED')
  t.equal(wrong.headers.allow, 'GET, HEAD')
  t.same(wrong.json().details, { allowed: ['GET', 'HEAD'] })

  const key = await app.inject({ method: 'GET', url: '/api/auth/keys/3f2b8c1e-4d5a-4b6c-8d7e-9f0a1b2c3d4e' })
  t.equal(key.statusCode, 405, 'a path with parameters')
  t.equal(key.headers.allow, 'DELETE')

  const unknown = await app.inject({ method: 'PUT', url: '/api/no/such/route' })
  t.equal(unknown.statusCode, 404)
  assertShape(t, 404, unknown.headers, unknown.body, 'AMK_ROUTE_NOT_FOUND')
  // A route that finds nothing itself (a static file of the docs) is a 404 for its own method.
  const file = await app.inject({ method: 'GET', url: '/docs/static/no-such-file.png' })
  t.equal(file.statusCode, 404)
  const head = await app.inject({ method: 'HEAD', url: '/api/status' })
  t.equal(head.statusCode, 200, 'HEAD where a GET route exposes it')
  const stream = await app.inject({ method: 'HEAD', url: '/api/stream/blog?topic=x', headers: { 'x-api-key': ADMIN_KEY } })
  t.equal(stream.statusCode, 405, 'an SSE GET route has no HEAD: nothing starts')
  t.match(stream.headers.allow, /\bGET\b/)
})

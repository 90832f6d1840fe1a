// The one error shape ({ statusCode, code, error, message, requestId, details? }) for 404, 400 with
// per-field details, 413, 415 and 500 (masked in every environment), x-request-id in, out and in the logs,
// and the one masking rule (toPublicError) that HTTP errors, stream events and workflow steps share.
import t, { type Test } from 'tap'
import { Type } from 'typebox'
import { Value } from 'typebox/value'
import type { FastifyInstance } from 'fastify'
import { build } from './support.js'
import { ErrorResponseSchema } from '../src/schemas/common.js'
import { INTERNAL_MESSAGE, NotFoundError, ServiceUnavailableError, toPublicError, withDetails } from '../src/errors.js'
import { toStepError } from '../src/coordinator/engine.js'
import { runGeneration } from '../src/streams/generation.js'
import { MemoryEventLog } from '../src/streams/memory-event-log.js'
import { blogSession } from './streams/support.js'

const BodySchema = Type.Object({
  name: Type.String({ minLength: 1 }),
  count: Type.Integer({ minimum: 1 }),
  email: Type.Optional(Type.String({ format: 'email' }))
}, { additionalProperties: false })

function testRoutes (app: FastifyInstance) {
  app.post('/test/items', {
    config: { public: true },
    schema: { body: BodySchema, querystring: Type.Object({ limit: Type.Optional(Type.Integer({ maximum: 10 })) }) }
  }, async (request) => ({ received: request.body }))
  app.get('/test/boom', { config: { public: true } }, async () => {
    throw new Error('connection to db at 10.0.0.5 refused (password=hunter2)')
  })
  app.get('/test/unavailable', { config: { public: true } }, async () => {
    throw withDetails(
      new ServiceUnavailableError('agent travel is warming up'),
      { agent: 'travel' },
      { 'retry-after': '5' }
    )
  })
}

function assertShape (t: Test, body: unknown, statusCode: number, code: string, requestId: string) {
  t.ok(Value.Check(ErrorResponseSchema, body), `matches ErrorResponse: ${JSON.stringify(body)}`)
  const error = body as { statusCode: number, code: string, requestId: string }
  t.equal(error.statusCode, statusCode)
  t.equal(error.code, code)
  t.equal(error.requestId, requestId, 'requestId equals the x-request-id header')
}

t.test('404 for an unknown route', async t => {
  const app = await build(t)
  const res = await app.inject('/api/does-not-exist?secret=1')
  t.equal(res.statusCode, 404)
  assertShape(t, res.json(), 404, 'AMK_ROUTE_NOT_FOUND', String(res.headers['x-request-id']))
  t.equal(res.json().error, 'Not Found')
  t.equal(res.json().message, 'Route GET /api/does-not-exist not found', 'no query string in the message')
})

t.test('400 lists every bad field in details', async t => {
  const app = await build(t, { before: testRoutes })
  const res = await app.inject({
    method: 'POST',
    url: '/test/items',
    payload: { count: 0, email: 'not-an-email', extra: true }
  })
  t.equal(res.statusCode, 400)
  const body = res.json()
  assertShape(t, body, 400, 'AMK_VALIDATION', String(res.headers['x-request-id']))
  const fields = Object.fromEntries(body.details.map((d: { field: string, message: string }) => [d.field, d.message]))
  t.same(fields, {
    'body.name': 'is required',
    'body.count': 'must be >= 1',
    'body.email': 'must match format "email"',
    'body.extra': 'is not allowed'
  })
  t.match(body.message, /^Request validation failed: /)

  const query = await app.inject({ method: 'POST', url: '/test/items?limit=99', payload: { name: 'a', count: 1 } })
  t.equal(query.statusCode, 400)
  t.same(query.json().details, [{ field: 'query.limit', message: 'must be <= 10' }])

  const strict = await app.inject({ method: 'POST', url: '/test/items', payload: { name: 'a', count: '3' } })
  t.equal(strict.statusCode, 400, 'bodies are not type-coerced')
  t.same(strict.json().details, [{ field: 'body.count', message: 'must be integer' }])

  const ok = await app.inject({ method: 'POST', url: '/test/items?limit=3', payload: { name: 'a', count: 3 } })
  t.equal(ok.statusCode, 200)
  t.same(ok.json(), { received: { name: 'a', count: 3 } })
})

t.test('route plugins that register their own schemas keep the strict validator', async t => {
  const app = await build(t, {
    before: async (app: FastifyInstance) => {
      await app.register(async (scoped) => {
        scoped.addSchema(Type.Object({ name: Type.String() }, { $id: 'ScopedThing', additionalProperties: false }))
        scoped.post('/test/scoped', {
          config: { public: true },
          schema: { body: Type.Ref('ScopedThing') }
        }, async (request) => ({ received: request.body }))
      })
    }
  })
  const extra = await app.inject({ method: 'POST', url: '/test/scoped', payload: { name: 'a', bogus: 1 } })
  t.equal(extra.statusCode, 400, 'an extra field is refused, not silently stripped')
  t.same(extra.json().details, [{ field: 'body.bogus', message: 'is not allowed' }])
  t.equal((await app.inject({ method: 'POST', url: '/test/scoped', payload: { name: 'a' } })).statusCode, 200)

  const login = await app.inject({
    method: 'POST',
    url: '/api/auth/login',
    payload: { email: 'a@example.com', password: 'x'.repeat(12), bogus: true }
  })
  t.equal(login.statusCode, 400, 'the real login route refuses extra fields too')
  t.match(login.json().details, [{ field: 'body.bogus' }])
})

t.test('400 for malformed JSON', async t => {
  const app = await build(t, { before: testRoutes })
  const res = await app.inject({
    method: 'POST',
    url: '/test/items',
    headers: { 'content-type': 'application/json' },
    payload: '{"name":'
  })
  t.equal(res.statusCode, 400)
  assertShape(t, res.json(), 400, 'AMK_BAD_REQUEST', String(res.headers['x-request-id']))
})

t.test('413 when the body is over BODY_LIMIT', async t => {
  const app = await build(t, { env: { BODY_LIMIT: '1024' }, before: testRoutes })
  const res = await app.inject({ method: 'POST', url: '/test/items', payload: { name: 'x'.repeat(2000), count: 1 } })
  t.equal(res.statusCode, 413)
  assertShape(t, res.json(), 413, 'AMK_PAYLOAD_TOO_LARGE', String(res.headers['x-request-id']))
  t.equal(res.json().error, 'Payload Too Large')
})

t.test('415 for an unsupported content type', async t => {
  const app = await build(t, { before: testRoutes })
  const res = await app.inject({
    method: 'POST',
    url: '/test/items',
    headers: { 'content-type': 'application/xml' },
    payload: '<a/>'
  })
  t.equal(res.statusCode, 415)
  assertShape(t, res.json(), 415, 'AMK_UNSUPPORTED_MEDIA_TYPE', String(res.headers['x-request-id']))
  t.equal(res.json().message, 'Unsupported Content-Type: application/xml')
})

t.test('500: the message is masked in development and in production', async t => {
  const dev = await build(t, { before: testRoutes })
  const shown = await dev.inject('/test/boom')
  t.equal(shown.statusCode, 500)
  assertShape(t, shown.json(), 500, 'AMK_INTERNAL', String(shown.headers['x-request-id']))
  t.equal(shown.json().message, INTERNAL_MESSAGE)
  t.notMatch(shown.body, /hunter2|10\.0\.0\.5/)

  const logs: string[] = []
  const prod = await build(t, {
    env: { NODE_ENV: 'production', LLM_PROVIDER: 'offline', JWT_SECRET: 's'.repeat(40) },
    before: testRoutes,
    logs
  })
  const masked = await prod.inject('/test/boom')
  t.equal(masked.statusCode, 500)
  assertShape(t, masked.json(), 500, 'AMK_INTERNAL', String(masked.headers['x-request-id']))
  t.equal(masked.json().message, 'Internal Server Error')
  t.notMatch(masked.body, /hunter2|10\.0\.0\.5/, 'nothing of the cause leaks')
  t.ok(
    logs.some(line => line.includes('hunter2') && line.includes(masked.json().requestId)),
    'the cause is logged with the request id'
  )

  const ours = await prod.inject('/test/unavailable')
  t.equal(ours.statusCode, 503)
  t.equal(ours.json().message, 'agent travel is warming up', 'catalogue errors keep their message in production')
  t.same(ours.json().details, { agent: 'travel' })
  t.equal(ours.headers['retry-after'], '5')
})

t.test('x-request-id: echoed when sent, generated when not, replaced when unsafe, in every log line', async t => {
  const logs: string[] = []
  const app = await build(t, { logs })
  const echoed = await app.inject({ url: '/api/status', headers: { 'x-request-id': 'client-req.42:abc' } })
  t.equal(echoed.headers['x-request-id'], 'client-req.42:abc')

  const generated = await app.inject('/api/status')
  t.match(String(generated.headers['x-request-id']), /^[0-9a-f-]{36}$/)

  for (const unsafe of ['<script>alert(1)</script>', 'a b', 'x'.repeat(200), 'id"; drop']) {
    const res = await app.inject({ url: '/api/does-not-exist', headers: { 'x-request-id': unsafe } })
    const id = String(res.headers['x-request-id'])
    t.not(id, unsafe, `replaced: ${unsafe.slice(0, 20)}`)
    t.match(id, /^[0-9a-f-]{36}$/)
    t.equal(res.json().requestId, id)
  }

  const lines = logs.map(line => JSON.parse(line)).filter(line => line.req || line.res)
  t.ok(lines.length >= 4)
  t.ok(lines.every(line => typeof line.requestId === 'string'), 'request log lines carry requestId')
  t.ok(lines.some(line => line.requestId === 'client-req.42:abc'))
})

/** A driver error as the pg client raises it: no status, a code that is not ours, an address in the message. */
function driverError () {
  return Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5433'), {
    code: 'ECONNREFUSED',
    errno: -111,
    address: '127.0.0.1',
    port: 5433
  })
}

t.test(
  'toPublicError: catalogue errors pass through, library client errors keep their message, the rest is masked',
  async t => {
    const ours = withDetails(new NotFoundError("Unknown agent 'x'"), { availableAgents: ['travel'] })
    t.same(toPublicError(ours), {
      statusCode: 404,
      code: 'AMK_NOT_FOUND',
      message: "Unknown agent 'x'",
      details: { availableAgents: ['travel'] }
    })
    t.same(
      toPublicError(new ServiceUnavailableError('agent travel is warming up')),
      { statusCode: 503, code: 'AMK_SERVICE_UNAVAILABLE', message: 'agent travel is warming up' },
      'a 5xx of the catalogue keeps its message'
    )

    t.same(toPublicError(driverError()), { statusCode: 500, code: 'AMK_INTERNAL', message: INTERNAL_MESSAGE })
    t.same(
      toPublicError(Object.assign(new Error('upstream 10.0.0.5 failed'), { statusCode: 502 })),
      { statusCode: 502, code: 'AMK_BAD_GATEWAY', message: INTERNAL_MESSAGE },
      'a library 5xx keeps its status, not its message'
    )
    t.same(
      toPublicError(
        Object.assign(new Error('Body is too large'), { statusCode: 413, code: 'FST_ERR_CTP_BODY_TOO_LARGE' })
      ),
      { statusCode: 413, code: 'AMK_PAYLOAD_TOO_LARGE', message: 'Body is too large' },
      'a library 4xx keeps its message'
    )
    t.same(toPublicError('a string was thrown'), { statusCode: 500, code: 'AMK_INTERNAL', message: INTERNAL_MESSAGE })
    t.same(
      toPublicError(Object.assign(new Error('x'), { statusCode: 200 })).statusCode,
      500,
      'a status outside 400–599 is 500'
    )
  }
)

t.test('a driver error reads the same in an HTTP response, a stream error event and a workflow step', async t => {
  const app = await build(t, {
    before: (app: FastifyInstance) => {
      app.get('/test/driver', { config: { public: true } }, async () => { throw driverError() })
    }
  })
  const http = (await app.inject('/test/driver')).json()
  t.match(http, { statusCode: 500, code: 'AMK_INTERNAL', message: INTERNAL_MESSAGE })

  const step = toStepError(driverError())
  t.same(step, { code: 'AMK_INTERNAL', message: INTERNAL_MESSAGE })

  const log = new MemoryEventLog({ ttlMs: 60_000, maxEvents: 100 })
  const session = await blogSession(log, 'st_masked')
  await runGeneration(
    session,
    { agent: 'content', method: 'generateBlogPost', input: {}, caller: { id: 'c', kind: 'api-key', role: 'premium' } },
    {
      log,
      invoke: async () => {
        throw driverError()
      }
    }
  )
  const last = await log.last(session.streamId)
  t.match(last, { event: 'error', data: { code: 'AMK_INTERNAL', message: INTERNAL_MESSAGE } })
  t.notMatch(JSON.stringify([http, step, last]), /ECONNREFUSED|127\.0\.0\.1|5433/, 'no driver text or address anywhere')
})

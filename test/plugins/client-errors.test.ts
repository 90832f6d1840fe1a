// Errors raised before a route runs still use the one error shape: Node's own (malformed HTTP, headers
// too large, a request not received in time), the router's (bad URL, 414), CORS refusals and requests
// that arrive while the server shuts down. A slow upload is cut; a long SSE response is not.
import t, { type Test } from 'tap'
import net from 'node:net'
import { Value } from 'typebox/value'
import type { FastifyInstance } from 'fastify'
import { build } from '../support.js'
import { ErrorResponseSchema } from '../../src/schemas/common.js'
import { createOfflineProvider } from '../../src/llm/offline.js'
import type { LlmProvider } from '../../src/llm/types.js'
import { PREMIUM_KEY, ROUTES, STREAM_ENV } from '../streams/support.js'

interface RawResponse { status: number, headers: Record<string, string>, body: string, elapsedMs: number }

/** Sends raw bytes (optionally a trickle of more) and reads until the server closes the connection. */
function raw (
  port: number,
  head: string,
  trickle: { bytes: number; everyMs: number } | null = null
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const started = performance.now()
    const socket = net.connect(port, '127.0.0.1', () => socket.write(head))
    let data = ''
    let timer: NodeJS.Timeout | undefined
    if (trickle) {
      let sent = 0
      timer = setInterval(() => {
        if (sent++ < trickle.bytes && socket.writable) socket.write('a')
      }, trickle.everyMs)
    }
    socket.setEncoding('utf8')
    socket.on('data', chunk => {
      data += chunk
    })
    socket.on('error', () => {})
    socket.on('close', () => {
      clearInterval(timer)
      const [headText, body = ''] = data.split('\r\n\r\n')
      const [statusLine, ...lines] = headText.split('\r\n')
      const headers = Object.fromEntries(
        lines.map(line => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()])
      )
      if (!statusLine) return reject(new Error('no response'))
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body, elapsedMs: performance.now() - started })
    })
    socket.setTimeout(20_000, () => socket.destroy())
  })
}

function assertShape (t: Test, status: number, headers: Record<string, unknown>, body: string, code: string) {
  const parsed = JSON.parse(body)
  t.ok(Value.Check(ErrorResponseSchema, parsed), `error shape: ${body}`)
  t.equal(parsed.statusCode, status)
  t.equal(parsed.code, code)
  t.equal(parsed.requestId, headers['x-request-id'], 'requestId equals x-request-id')
  t.match(headers['content-type'], /^application\/json/)
}

async function listening (
  t: Test,
  env: Record<string, string> = {},
  llmProvider?: LlmProvider
): Promise<[FastifyInstance, number]> {
  const app = await build(t, { env: { ...STREAM_ENV, ...env }, appOptions: llmProvider ? { llmProvider } : {} })
  await app.listen({ port: 0, host: '127.0.0.1' })
  return [app, (app.server.address() as net.AddressInfo).port]
}

t.test('malformed HTTP, oversized headers, bad URLs and long parameters get the error shape', async t => {
  const [, port] = await listening(t)
  const cases: Array<[string, number, string]> = [
    ['GET /api/status HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n', 400, 'AMK_BAD_REQUEST'],
    ['GARBAGE\r\n\r\n', 400, 'AMK_BAD_REQUEST'],
    ['POST /api/auth/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 400, 'AMK_BAD_REQUEST'],
    [`GET /api/status HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431, 'AMK_HEADERS_TOO_LARGE'],
    ['GET /api/agents/%E0%A4%A/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 400, 'AMK_BAD_REQUEST'],
    [
      `GET /api/agents/${'a'.repeat(300)}/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
      414,
      'AMK_URI_TOO_LONG'
    ]
  ]
  for (const [head, status, code] of cases) {
    const res = await raw(port, head)
    t.equal(res.status, status, JSON.stringify(head.slice(0, 60)))
    assertShape(t, res.status, res.headers, res.body, code)
  }
})

t.test('a slow upload is cut with 408; an SSE response longer than the request timeout is not', async t => {
  const offline = createOfflineProvider({ chunkSize: 400 })
  // The first delta and the end each wait 1.2 s, so the stream outlasts the 1 s request timeout twice.
  const slow: LlmProvider = {
    ...offline,
    name: 'offline',
    generate: offline.generate.bind(offline),
    check: offline.check.bind(offline),
    async * stream (request) {
      let first = true
      for await (const chunk of offline.stream(request)) {
        if (first || chunk.type === 'done') await new Promise(resolve => setTimeout(resolve, 1200))
        first = false
        yield chunk
      }
    }
  }
  const [, port] = await listening(t, { REQUEST_TIMEOUT_MS: '1000', HEADERS_TIMEOUT_MS: '1000' }, slow)
  const head =
    'POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{'
  const res = await raw(port, head, { bytes: 100, everyMs: 200 })
  t.equal(res.status, 408)
  assertShape(t, 408, res.headers, res.body, 'AMK_REQUEST_TIMEOUT')
  t.ok(res.elapsedMs < 5000, `cut after ${Math.round(res.elapsedMs)} ms (timeout 1 s, checked every second)`)

  const started = performance.now()
  const stream = await fetch(`http://127.0.0.1:${port}/api/stream/blog`, {
    method: 'POST',
    headers: { 'x-api-key': PREMIUM_KEY, 'content-type': 'application/json' },
    body: JSON.stringify(ROUTES.blog.input)
  })
  const text = await stream.text()
  const elapsed = performance.now() - started
  t.equal(stream.status, 200)
  t.match(text, /event: complete/, 'the stream ran to its end')
  t.ok(elapsed > 2000, `the stream lasted ${Math.round(elapsed)} ms, past the 1 s request timeout`)
})

t.test('CORS refusals and requests during shutdown use the error shape', async t => {
  const app = await build(t, { env: { ALLOWED_ORIGINS: 'https://app.example' } })
  const malformed = await app.inject({
    method: 'OPTIONS',
    url: '/api/agents/list',
    headers: { origin: 'https://app.example' }
  })
  t.equal(malformed.statusCode, 400)
  assertShape(t, 400, malformed.headers, malformed.body, 'AMK_BAD_REQUEST')
  const foreign = await app.inject({
    method: 'OPTIONS',
    url: '/api/agents/list',
    headers: { origin: 'https://evil.example', 'access-control-request-method': 'GET' }
  })
  t.equal(foreign.statusCode, 403)
  assertShape(t, 403, foreign.headers, foreign.body, 'AMK_CORS_ORIGIN_REFUSED')
  const allowed = await app.inject({
    method: 'OPTIONS',
    url: '/api/agents/list',
    headers: { origin: 'https://app.example', 'access-control-request-method': 'GET' }
  })
  t.equal(allowed.statusCode, 204)
  t.equal(allowed.headers['access-control-allow-origin'], 'https://app.example')

  app.lifecycle.beginShutdown()
  const late = await app.inject({ url: '/api/agents/list' })
  t.equal(late.statusCode, 503)
  assertShape(t, 503, late.headers, late.body, 'AMK_SHUTTING_DOWN')
  t.equal(late.headers['retry-after'], '1')
  const ready = await app.inject({ url: '/api/health/ready' })
  t.equal(ready.statusCode, 503, 'readiness still answers, and says not ready')
})

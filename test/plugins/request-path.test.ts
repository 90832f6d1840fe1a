// The request path's cheaper pieces (issue 16) keep their behaviour: the precomputed security headers are
// helmet's, byte for byte and in its order; Redis commands of one event-loop turn leave in one socket write,
// each with its own reply or error, and the cache reads of a turn are one MGET; the request metrics are one hook
// with the same series.
import t from 'tap'
import { once } from 'node:events'
import http from 'node:http'
import type { Writable } from 'node:stream'
import type { AddressInfo } from 'node:net'
import helmet from 'helmet'
import { Redis } from 'ioredis'
import { HELMET_OPTIONS, helmetHeaders } from '../../src/plugins/security.js'
import { TickPipeline, tickPipelineFor } from '../../src/limits/tick-pipeline.js'
import { createRedisCache } from '../../src/cache/redis-cache.js'
import { createMemoryCache } from '../../src/cache/memory-cache.js'
import { build, needs, REDIS_URL, redisPrefix } from '../support.js'

/** The raw header lines (name as sent, value) of a GET to `port`. */
async function rawHeaders (port: number, path: string): Promise<Array<[string, string]>> {
  const response = await new Promise<http.IncomingMessage>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path }, resolve).on('error', reject)
  })
  response.resume()
  const pairs: Array<[string, string]> = []
  const raw = response.rawHeaders
  for (let i = 0; i < raw.length; i += 2) pairs.push([raw[i], raw[i + 1]])
  return pairs
}

t.test('the security headers are the ones helmet sends, byte for byte and in order', async t => {
  // helmet itself, as middleware on a plain node:http server.
  const applyHelmet = helmet(HELMET_OPTIONS)
  const plain = http.createServer((req, res) => applyHelmet(req, res, () => res.end('{}')))
  plain.listen(0, '127.0.0.1')
  await once(plain, 'listening')
  t.teardown(() => plain.close())
  const fromHelmet = await rawHeaders((plain.address() as AddressInfo).port, '/')
  const securityNames = new Set(helmetHeaders().map(([name]) => name.toLowerCase()))
  const expected = fromHelmet.filter(([name]) => securityNames.has(name.toLowerCase()))
  t.ok(expected.length >= 10, `${expected.length} security headers`)
  t.same(helmetHeaders(), expected, 'precomputed = what helmet sends')

  const app = await build(t)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as AddressInfo).port
  for (const path of ['/api/status', '/api/does-not-exist', '/api/agents/list']) {
    const sent = (await rawHeaders(port, path)).filter(([name]) => securityNames.has(name.toLowerCase()))
    t.same(sent, expected, `${path}: the same lines`)
  }
})

t.test('commands of one event-loop turn share one write; each gets its own reply or error', { skip: needs('redis') }, async t => {
  const redis = new Redis(REDIS_URL)
  t.teardown(() => redis.quit())
  const prefix = redisPrefix()
  await redis.set(`${prefix}text`, 'not a number')
  // The socket's writes, recorded and passed through: several chunks at once go to _writev, one to _write.
  const socket = redis.stream as Redis['stream'] & Required<Pick<Writable, '_write' | '_writev'>>
  const writevs = t.capture(socket, '_writev', socket._writev.bind(socket))
  const writes = t.capture(socket, '_write', socket._write.bind(socket))
  const batch = new TickPipeline(redis)
  const replies = await Promise.allSettled([
    ...Array.from({ length: 20 }, (_, i) => batch.call('incrby', [`${prefix}n`, i + 1])),
    batch.call('incr', [`${prefix}text`]),
    batch.call('get', [`${prefix}missing`])
  ])
  t.same(writevs().map(call => call.args[0].length), [22], 'the 22 commands leave in one write')
  t.equal(writes().length, 0, 'no command written on its own')
  const counts = replies.slice(0, 20).map(r => (r.status === 'fulfilled' ? r.value : null)) as number[]
  t.same([...counts].sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => ((i + 1) * (i + 2)) / 2),
    'each INCRBY answered with its own running total')
  t.equal(replies[20].status, 'rejected', 'the failing command rejects alone')
  t.match((replies[20] as PromiseRejectedResult).reason, { message: /not an integer/ })
  t.same(replies[21], { status: 'fulfilled', value: null })
  // A lone command is one write too.
  t.equal(await batch.call('incr', [`${prefix}n`]), 211)
  t.equal(writevs().length + writes().length, 1)
  t.equal(tickPipelineFor(redis), tickPipelineFor(redis), 'one per client')
})

t.test('the response cache reads of one event-loop turn are one MGET', { skip: needs('redis') }, async t => {
  const redis = new Redis(REDIS_URL)
  t.teardown(() => redis.quit())
  const prefix = redisPrefix()
  const cache = createRedisCache(redis, { fallback: createMemoryCache({ maxEntries: 10 }) })
  const entry = (n: number) => ({ data: { n }, model: 'offline', createdAt: n })
  for (let n = 0; n < 3; n++) await redis.set(`${prefix}k${n}`, JSON.stringify(entry(n)))
  await redis.rpush(`${prefix}list`, 'not a string') // GET would fail with WRONGTYPE; a miss here
  const sent = t.capture(redis, 'sendCommand', redis.sendCommand.bind(redis))
  const keys = ['k0', 'missing', 'k2', 'list', 'k1', 'k0'].map(key => prefix + key)
  const found = await Promise.all(keys.map(key => cache.get(key)))
  const calls = sent() // the calls since the last look
  t.same(calls.map(call => call.args[0].name), ['mget'], 'one command for six reads')
  t.same(calls[0].args[0].args, keys, 'every key, in order')
  t.same(found, [entry(0), null, entry(2), null, entry(1), entry(0)], 'each read answered with its own entry')
  // More reads than one MGET takes (256): two commands, one write.
  const many = await Promise.all(Array.from({ length: 300 }, (_, i) => cache.get(`${prefix}k${i % 3}`)))
  t.equal(sent().length, 2)
  t.ok(many.every((value, i) => value?.createdAt === i % 3))
  await redis.del(`${prefix}k0`, `${prefix}k1`, `${prefix}k2`, `${prefix}list`)
})

t.test('the request metrics: a counter for every request, a histogram for routes only', async t => {
  const app = await build(t, { env: { METRICS_PUBLIC: 'true' } })
  for (let i = 0; i < 3; i++) await app.inject('/api/status')
  await app.inject({ method: 'HEAD', url: '/api/status' })
  await app.inject('/api/no-such-thing')
  const body = (await app.inject('/api/metrics')).body
  t.match(body, 'http_requests_total{method="GET",route="/api/status",status_code="200"} 3')
  t.match(body, 'http_requests_total{method="HEAD",route="/api/status",status_code="200"} 1')
  t.match(body, 'http_requests_total{method="GET",route="__not_found__",status_code="404"} 1')
  t.match(body, 'http_request_duration_seconds_count{method="GET",route="/api/status",status_code="200"} 3')
  t.notMatch(body, /http_request_duration_seconds_count\{method="HEAD"/, 'HEAD is not timed')
  t.notMatch(body, /http_request_duration_seconds_count\{[^}]*404/, 'unknown URLs are not timed')
  t.notMatch(body, /http_request_duration_seconds_count\{[^}]*route="\/api\/metrics"/, 'nor is the scrape')
})

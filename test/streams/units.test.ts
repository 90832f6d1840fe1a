// Framework-free pieces of streaming: the SSE encoder and id parsing, the incremental array scanner
// behind `partial` and `post` events, the session registry's caps (per stream), and one-time tickets (memory and
// real Redis, where two instances share them).
import http from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { encodeComment, encodeEvent, encodeRetry, isTerminal, parseEventId, SSE_HEADERS } from '../../src/streams/events.js'
import { ArrayItemScanner } from '../../src/streams/array-scanner.js'
import { PassThrough } from 'node:stream'
import type { ServerResponse } from 'node:http'
import { SseConnection } from '../../src/streams/connection.js'
import { MemoryEventLog } from '../../src/streams/memory-event-log.js'
import { pumpLocal, WritePacer } from '../../src/streams/pump.js'
import { SessionRegistry } from '../../src/streams/sessions.js'
import { randomHex12 } from '../../src/streams/service.js'
import { createTicketStore, type TicketStore } from '../../src/streams/tickets.js'
import type { Caller } from '../../src/auth/roles.js'
import { needs, REDIS_URL, redisPrefix } from '../support.js'
import { until } from './support.js'

t.test('encoder: one frame per event, ids name the stream and position', async t => {
  const frame = encodeEvent('st_ab', { seq: 7, event: 'token', data: { chunk: 'a\nb "c"', index: 3 } })
  t.equal(
    frame,
    'id: st_ab-7\nevent: token\ndata: {"chunk":"a\\nb \\"c\\"","index":3}\n\n',
    'newlines stay escaped inside one data line'
  )
  t.equal(encodeComment('heart\nbeat'), ': heart beat\n\n')
  t.equal(encodeRetry(1500), 'retry: 1500\n\n')
  t.same(parseEventId('st_ab-7'), { streamId: 'st_ab', seq: 7 })
  t.same(parseEventId('with-dash-12'), { streamId: 'with-dash', seq: 12 })
  t.equal(parseEventId('st_ab'), null)
  t.equal(parseEventId('st_ab-x'), null)
  t.ok(
    isTerminal({ event: 'complete', data: { durationMs: 1, usage: { inputTokens: 0, outputTokens: 0, costUsd: 0 } } })
  )
  t.ok(isTerminal({ event: 'error', data: { code: 'CANCELLED', message: '', recoverable: false } }))
  t.notOk(
    isTerminal({ event: 'error', data: { code: 'SHUTTING_DOWN', message: '', recoverable: true } }),
    'shutdown notice does not end the stream'
  )
})

t.test('array scanner: reports each element object as soon as it closes, across any chunking', async t => {
  const text = JSON.stringify({
    title: 'x [not] {an} array',
    recommendations: [{ name: 'Kyoto', note: 'brace } in "string"', tags: ['a', { b: 1 }] }, { name: 'Lisbon' }],
    other: [{ name: 'ignored' }]
  }, null, 1)
  for (const size of [1, 3, 7, text.length]) {
    const scanner = new ArrayItemScanner('recommendations')
    const seen: unknown[] = []
    const at: number[] = []
    for (let i = 0; i < text.length; i += size) {
      for (const item of scanner.push(text.slice(i, i + size))) { seen.push(item); at.push(i) }
    }
    t.same(
      seen,
      [{ name: 'Kyoto', note: 'brace } in "string"', tags: ['a', { b: 1 }] }, { name: 'Lisbon' }],
      `chunk size ${size}`
    )
    if (size === 1) t.ok(at[0] < text.indexOf('Lisbon'), 'the first item is reported before the second arrives')
  }
  const top = new ArrayItemScanner()
  t.same(top.push('[{"a":1},{"a"'), [{ a: 1 }])
  t.same(top.push(':2}]'), [{ a: 2 }], 'a top-level array works too')
})

t.test('array scanner: holds only the element being read, not the answer so far', async t => {
  const items = Array.from({ length: 200 }, (_, i) => ({ name: `place ${i}`, note: 'x'.repeat(100) }))
  const text = JSON.stringify({ title: 'a "long" answer', recommendations: items, after: 'the end' })
  const scanner = new ArrayItemScanner('recommendations')
  const held = () => (scanner as unknown as { text: string }).text.length
  let seen = 0
  let most = 0
  for (let i = 0; i < text.length; i += 48) {
    seen += scanner.push(text.slice(i, i + 48)).length
    most = Math.max(most, held())
  }
  t.equal(seen, items.length)
  t.ok(most < 250, `at most ${most} characters held at once (the answer is ${text.length})`)
  t.equal(held(), 0, 'nothing once the array has closed')
})

t.test('connection: the client going away ends it once, for end listeners and a signal asked for later', async t => {
  const connections: SseConnection[] = []
  const server = http.createServer((_req, res) => {
    const connection = new SseConnection(res, 'st_conn', 0)
    connection.open({}, 1000)
    connections.push(connection)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  const request = http.get({
    port: (server.address() as AddressInfo).port,
    host: '127.0.0.1',
    path: '/',
    headers: { 'X-Asked': 'kept', cookie: 'c'.repeat(1000) }
  })
  const [response] = (await once(request, 'response')) as [http.IncomingMessage]
  response.resume()
  const [connection] = connections
  t.ok(connection.isOpen)
  const ends: string[] = []
  const removed = () => ends.push('removed')
  connection.onEnd(() => ends.push('first'))
  connection.onEnd(removed)
  connection.offEnd(removed)
  connection.onEnd(() => ends.push('second'))
  const early = connection.signal
  t.notOk(early.aborted)
  request.destroy()
  await once(early, 'abort')
  t.same(ends, ['first', 'second'], 'each listener once, in order; a removed one not at all')
  t.equal(early.reason, 'client-closed')
  t.notOk(connection.isOpen)
  connection.end()
  t.same(ends, ['first', 'second'], 'ending again changes nothing')
  t.equal(connection.endReason, 'client-closed', 'the first reason stays')
  connection.onEnd(() => ends.push('late'))
  t.same(ends, ['first', 'second', 'late'], 'a listener added after the end runs at once')
  t.ok(connection.signal.aborted, 'a signal asked for after the end is already aborted')
})

t.test('connection: the sent header block and the raw request lines are not kept; headers still read', async t => {
  const seen: Array<{ kept: unknown, headersSent: boolean, setHeader: string, raw: number, asked: unknown }> = []
  const server = http.createServer((req, res) => {
    const connection = new SseConnection(res, 'st_hdr', 0)
    connection.open({ ...SSE_HEADERS, 'x-long': 'v'.repeat(2000) }, 1000)
    let setHeader = 'allowed'
    try { res.setHeader('x-late', '1') } catch (error) { setHeader = (error as { code: string }).code }
    seen.push({
      kept: (res as unknown as { _header: unknown })._header,
      headersSent: res.headersSent,
      setHeader,
      raw: req.rawHeaders.length,
      asked: req.headers['x-asked']
    })
    connection.end()
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  const request = http.get({
    port: (server.address() as AddressInfo).port,
    host: '127.0.0.1',
    path: '/',
    headers: { 'X-Asked': 'kept', cookie: 'c'.repeat(1000) }
  })
  const [response] = (await once(request, 'response')) as [http.IncomingMessage]
  let body = ''
  for await (const chunk of response) body += String(chunk)
  t.equal(response.headers['x-long'], 'v'.repeat(2000), 'the client got the whole header block')
  t.equal(response.headers['content-type'], 'text/event-stream; charset=utf-8')
  t.equal(body, 'retry: 1000\n\n')
  const [{ kept, headersSent, setHeader, raw, asked }] = seen
  t.ok(typeof kept === 'string' && kept.length < 8, 'node keeps a stand-in, not the 2 KB block it sent')
  t.equal(raw, 0, 'the raw request header lines (a 1 KB cookie among them) are let go once the stream is open')
  t.equal(asked, 'kept', 'the request headers still read, from the object node built')
  t.ok(headersSent, 'headersSent stays true')
  t.equal(setHeader, 'ERR_HTTP_HEADERS_SENT', "node's guards still see the headers as sent")
})

/** A memory log holding one new stream, and a connection whose socket writes are collected in `writes`. */
async function pumpFixture (t: Test, streamId: string) {
  const log = new MemoryEventLog({ ttlMs: 60_000, maxEvents: 100 })
  t.teardown(() => log.close())
  const res = new PassThrough()
  const writes: Array<{ at: number, text: string }> = []
  res.on('data', chunk => writes.push({ at: performance.now(), text: String(chunk) }))
  const connection = new SseConnection(res as unknown as ServerResponse, streamId, 0)
  await log.create({
    streamId,
    ownerId: 'user-1',
    agent: 'content',
    method: 'generateBlogPost',
    createdAt: Date.now(),
    onDisconnect: 'cancel',
    instanceId: 'test'
  })
  return { log, connection, writes }
}

t.test('local pump: the events appended in one turn go out in one write; it ends once, at the terminal event', async t => {
  const { log, connection, writes } = await pumpFixture(t, 'st_pump')
  const ends: unknown[] = []
  pumpLocal(connection, log, 'st_pump', 0, error => ends.push(error))
  for (let seq = 1; seq <= 5; seq++) log.appendNow('st_pump', { seq, event: 'token', data: { chunk: 'x', index: seq - 1 } })
  await new Promise(resolve => setImmediate(resolve))
  t.equal(writes.length, 1, 'five appends in one turn, one write')
  t.equal(writes[0].text.split('event: token').length - 1, 5)
  log.appendNow('st_pump', {
    seq: 6,
    event: 'complete',
    data: { durationMs: 1, usage: { inputTokens: 0, outputTokens: 0, costUsd: 0 } }
  })
  await new Promise(resolve => setImmediate(resolve))
  t.equal(writes.length, 2)
  t.match(writes[1].text, 'event: complete')
  t.same(ends, [undefined], 'ended once, without an error')
  t.equal(connection.lastEventId, 'st_pump-6')
})

t.test('local pump: what a turn appends goes out in one write up to 64 KB; a larger backlog in several', async t => {
  const { log, connection, writes } = await pumpFixture(t, 'st_batch')
  pumpLocal(connection, log, 'st_batch', 0, () => {})
  const chunk = 'y'.repeat(800)
  let seq = 0
  const append = (count: number) => {
    for (let i = 0; i < count; i++) log.appendNow('st_batch', { seq: ++seq, event: 'token', data: { chunk, index: seq } })
  }
  append(50) // about 42 KB of frames: a streamed answer of this size went out in three writes at a 16 KB batch
  await new Promise(resolve => setImmediate(resolve))
  t.equal(writes.length, 1, 'one write')
  t.equal(writes[0].text.split('event: token').length - 1, 50)
  append(90) // about 76 KB: a catch-up is still cut into batches of at most 64 KB
  await new Promise(resolve => setImmediate(resolve))
  t.equal(writes.length, 3, 'two more writes')
  t.ok(writes.slice(1).every(w => w.text.length <= 64 * 1024 + 1024), 'none much over 64 KB')
  t.equal(writes.slice(1).reduce((n, w) => n + w.text.split('event: token').length - 1, 0), 90, 'every event written')
})

t.test('local pump with a pacer: the first event at once, faster ones at the next tick, the end at once', async t => {
  const { log, connection, writes } = await pumpFixture(t, 'st_paced')
  const pacer = new WritePacer(250)
  const ends: unknown[] = []
  pumpLocal(connection, log, 'st_paced', 0, error => ends.push(error), pacer)
  let seq = 0
  const token = () => log.appendNow('st_paced', { seq: ++seq, event: 'token', data: { chunk: 'x', index: seq - 1 } })
  const turn = () => new Promise(resolve => setImmediate(resolve))
  const tokensIn = (text: string) => text.split('event: token').length - 1

  token()
  await turn()
  t.equal(writes.length, 1, 'the first event after a quiet spell goes out at once')
  token()
  await turn()
  token()
  await turn()
  t.equal(writes.length, 1, 'events right after a write wait for the tick')
  await until(() => writes.length === 2)
  t.equal(tokensIn(writes[1].text), 2, 'the two waiting events share one write')
  t.ok(writes[1].at - writes[0].at >= 230, `written ${(writes[1].at - writes[0].at).toFixed(0)} ms after the first`)

  for (let i = 0; i < 40; i++) {
    token()
    await turn()
  }
  t.equal(writes.length, 3, 'a producer faster than the pacer is written once 32 events wait')
  t.equal(tokensIn(writes[2].text), 32)
  log.appendNow('st_paced', {
    seq: ++seq,
    event: 'complete',
    data: { durationMs: 1, usage: { inputTokens: 0, outputTokens: 0, costUsd: 0 } }
  })
  await turn()
  t.equal(writes.length, 4, 'the terminal event does not wait: the rest goes out with it')
  t.equal(tokensIn(writes[3].text), 8)
  t.match(writes[3].text, 'event: complete')
  t.same(ends, [undefined], 'ended once, without an error')
  pacer.flush()
  t.equal(writes.length, 4, 'a tick still due afterwards writes nothing')
})

t.test('write pacer: a tick runs at most 256 waiting connections, then lets the loop run I/O', async t => {
  const pacer = new WritePacer(5)
  const ran: number[] = []
  let ranBeforeIo = -1
  for (let i = 0; i < 600; i++) {
    pacer.later(() => {
      if (i === 0) setImmediate(() => { ranBeforeIo = ran.length })
      ran.push(i)
    })
  }
  await until(() => ran.length === 600)
  t.equal(ranBeforeIo, 256, 'an immediate queued by the first run came right after the first 256')
  t.same(ran, [...Array(600).keys()], 'in the order they were queued')
})

t.test('stream ids: 96 random bits each, distinct across the refills of their pool', async t => {
  const ids = Array.from({ length: 1000 }, () => randomHex12())
  t.ok(ids.every(id => /^[0-9a-f]{24}$/.test(id)), '24 hex characters')
  t.equal(new Set(ids).size, ids.length, 'no id repeats, before or after the pool of 256 is refilled')
  const halves = new Set(ids.map(id => id.slice(0, 12)))
  t.equal(halves.size, ids.length, 'consecutive ids share no bytes (each takes its own 12)')
})

t.test('session registry: per-process and per-caller caps, release frees the slot once', async t => {
  const registry = new SessionRegistry({ maxStreams: 3, maxPerCaller: 2 })
  const a1 = registry.acquire('a')
  const a2 = registry.acquire('a')
  t.ok(a1.ok && a2.ok)
  t.same(registry.acquire('a'), { ok: false, scope: 'caller', limit: 2 })
  const b1 = registry.acquire('b')
  t.ok(b1.ok)
  t.same(registry.acquire('c'), { ok: false, scope: 'process', limit: 3 })
  if (a1.ok) { a1.release(); a1.release() }
  t.equal(registry.openSlots, 2, 'double release counted once')
  t.equal(registry.callerSlots('a'), 1)
  t.ok(registry.acquire('c').ok)
})

t.test(
  'session registry: holders of one stream (its generation, a resume) count once against the caller cap',
  async t => {
    const registry = new SessionRegistry({ maxStreams: 10, maxPerCaller: 2 })
    const s1 = registry.acquire('a', 'st_1')
    t.ok(s1.ok && registry.acquire('a', 'st_2').ok)
    t.same(registry.acquire('a', 'st_3'), { ok: false, scope: 'caller', limit: 2 }, 'a third stream is refused')
    const resumed = registry.acquire('a', 'st_1')
    t.ok(resumed.ok, 'a resume of a stream the caller holds needs no new slot')
    t.equal(registry.callerSlots('a'), 2)
    t.equal(registry.openSlots, 3, 'the process cap still counts every holder')
    if (s1.ok) s1.release()
    t.same(registry.acquire('a', 'st_3'), { ok: false, scope: 'caller', limit: 2 }, 'st_1 is still held by the resume')
    if (resumed.ok) resumed.release()
    t.ok(registry.acquire('a', 'st_3').ok, 'released by its last holder: the slot is free')
  }
)

const caller: Caller = { id: 'user-1', kind: 'api-key', role: 'premium', keyId: 'k1' }

async function ticketContract (t: Test, a: TicketStore, b: TicketStore) {
  const { ticket, expiresAt } = await a.issue(caller)
  t.match(ticket, /^amkt_[\w-]{32}$/)
  t.ok(expiresAt > Date.now())
  t.same((await b.peek(ticket))?.caller, caller, 'bound to the caller who asked for it')
  t.equal(await b.peek('amkt_unknown'), null)
  t.equal(await b.peek('not-a-ticket'), null)
  const [first, second] = await Promise.all([a.claim(ticket, 'st_1'), b.claim(ticket, 'st_2')])
  t.ok(first !== second, 'exactly one stream claims a ticket')
  const record = await a.peek(ticket)
  t.equal(record?.streamId, first ? 'st_1' : 'st_2', 'afterwards bound to that stream (for resume)')
  t.equal(await a.claim(ticket, 'st_3'), false)
}

t.test('tickets in memory: one-time, bound to caller and stream, expire', async t => {
  const store = createTicketStore({ redis: null, keyPrefix: 'x:', ticketTtlMs: 50, replayTtlMs: 60_000 })
  await ticketContract(t, store, store)
  const { ticket } = await store.issue(caller)
  await new Promise(resolve => setTimeout(resolve, 80))
  t.equal(await store.peek(ticket), null, 'expired after its TTL')
  t.equal(await store.claim(ticket, 'st_9'), false)
})

t.test('tickets in Redis: shared by replicas, claimed atomically, expire', { skip: needs('redis') }, async t => {
  const clients = [new Redis(REDIS_URL), new Redis(REDIS_URL)]
  t.teardown(() => { for (const c of clients) c.disconnect() })
  const keyPrefix = redisPrefix()
  const [a, b] = clients.map(redis => createTicketStore({ redis, keyPrefix, ticketTtlMs: 300, replayTtlMs: 60_000 }))
  await ticketContract(t, a, b)
  const { ticket } = await a.issue(caller)
  await new Promise(resolve => setTimeout(resolve, 400))
  t.equal(await b.peek(ticket), null, 'expired after its TTL')
  t.equal(await b.claim(ticket, 'st_9'), false, 'an expired ticket cannot be claimed (no half-created key)')
  const keys = await clients[0].keys(`${keyPrefix}*`)
  t.ok(keys.every(k => !k.includes(ticket)), 'only a hash of the ticket is stored')
})

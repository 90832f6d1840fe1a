// Malformed HTTP over a real socket: bad request lines, header overflow (> 16 KB), invalid header
// characters, bad chunked encoding, conflicting lengths, and a few slow clients (headers or body never end).
// Each case is written raw; whatever the server answers (where Node lets it answer) is parsed, each
// connection bounded by a timeout.
import net from 'node:net'
import { createRng, type Rng } from './random.js'

export interface RawCase {
  name: string
  bytes: Buffer
  /** Keep the connection open after writing (a slow client): the server must time it out, not wait forever. */
  hold?: boolean
}
export interface RawAnswer { status: number, headers: Record<string, string>, body: string }
export interface RawOutcome { rawCase: RawCase, answers: RawAnswer[], closed: boolean, timedOut: boolean, raw: string }

// No health probe here: on a loaded machine its documented 503 (event loop stalled) is not an error.
const PATHS = [
  '/api',
  '/api/status',
  '/api/agents/travel/searchFlights',
  '/api/auth/login',
  '/api/agents/__proto__/health',
  '/api/stream/stats/constructor',
  '/openapi.json',
  '/api/coordinator/sequential'
]

const CRLF = '\r\n'

function request (line: string, headers: string[], body = ''): string {
  return `${line}${CRLF}${headers.join(CRLF)}${headers.length ? CRLF : ''}${CRLF}${body}`
}

/** `count` raw cases, reproducible from the seed, covering every category in turn. */
export function rawCases (seed: number, count: number, apiKey: string): RawCase[] {
  const rng = createRng(seed)
  const makers: Array<(rng: Rng) => [string, string | Buffer]> = [
    r => [
      'bad request line',
      r.pick([
        'GET\r\n\r\n',
        'GET / HTTP/9.9\r\n\r\n',
        'FOO@ /api HTTP/1.1\r\nHost: x\r\n\r\n',
        'GET /api HTTP/1.1 extra\r\nHost: x\r\n\r\n',
        ' GET /api HTTP/1.1\r\n\r\n',
        'GET /api\r\n\r\n',
        'GET /a\u0000pi HTTP/1.1\r\nHost: x\r\n\r\n',
        'GET /api HTTP/1.1\nHost: x\n\n',
        'HTTP/1.1 200 OK\r\n\r\n',
        '\u0000\u0001\u0002\u0003\r\n\r\n',
        'GET /api HTTP/1.1\r\r\n\r\n',
        'GET /%%%% HTTP/1.1\r\nHost: x\r\n\r\n',
        'GET /api/%E0%A4%A HTTP/1.1\r\nHost: x\r\n\r\n',
        'GET * HTTP/1.1\r\nHost: x\r\n\r\n',
        'GET http://evil.example/api HTTP/1.1\r\nHost: x\r\n\r\n',
        'CONNECT evil.example:443 HTTP/1.1\r\nHost: x\r\n\r\n',
        'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'
      ])
    ],
    r => ['long url', request(`GET /api?${'a'.repeat(r.pick([8000, 17_000, 70_000]))} HTTP/1.1`, ['Host: x'])],
    r => [
      'header overflow',
      request(`GET ${r.pick(PATHS)} HTTP/1.1`, ['Host: x', `X-Big: ${'b'.repeat(r.pick([16_500, 17_000, 40_000]))}`])
    ],
    r => [
      'many headers',
      request(`GET ${r.pick(PATHS)} HTTP/1.1`, [
        'Host: x',
        ...Array.from({ length: r.pick([1500, 3000]) }, (_, i) => `X-H${i}: v`)
      ])
    ],
    r => [
      'invalid header',
      request(`GET ${r.pick(PATHS)} HTTP/1.1`, [
        'Host: x',
        r.pick([
          'X-Foo: a\u0000b',
          'X Foo: bar',
          'X-Foo:\u007f',
          'NoColon',
          'X-Foo: a\r\n b',
          ': empty-name',
          'X-Foo\u0001: y',
          'Content-Length: abc',
          'Content-Length: -1',
          'Transfer-Encoding: gzip, chunked, identity',
          `x-api-key: ${apiKey}\u0000`,
          'Host: a\r\nHost: b',
          'X-Request-Id: \u00ff\u00fe'
        ])
      ])
    ],
    r => [
      'bad chunked',
      request(
        `POST ${r.pick(PATHS)} HTTP/1.1`,
        ['Host: x', 'Content-Type: application/json', 'Transfer-Encoding: chunked', `x-api-key: ${apiKey}`],
        r.pick([
          'zz\r\n{}\r\n0\r\n\r\n',
          '2\r\n{}\r\n',
          '5\r\n{}\r\n0\r\n\r\n',
          'ffffffffffffffffff\r\n{}\r\n0\r\n\r\n',
          '2;' + 'e'.repeat(20_000) + '\r\n{}\r\n0\r\n\r\n',
          '2\r\n{}0\r\n\r\n',
          '-2\r\n{}\r\n0\r\n\r\n',
          '2\n{}\n0\n\n',
          '0\r\nTrailer\u0000: x\r\n\r\n'
        ])
      )
    ],
    r => [
      'conflicting length',
      request(
        `POST ${r.pick(PATHS)} HTTP/1.1`,
        [
          'Host: x',
          'Content-Type: application/json',
          ...r.pick([
            ['Content-Length: 2', 'Transfer-Encoding: chunked'],
            ['Content-Length: 2', 'Content-Length: 3'],
            ['Content-Length: 2, 2'],
            ['Content-Length: 99999999999999999999999']
          ])
        ],
        '{}'
      )
    ],
    r => [
      'short body',
      request(
        `POST ${r.pick(PATHS)} HTTP/1.1`,
        ['Host: x', 'Content-Type: application/json', `x-api-key: ${apiKey}`, `Content-Length: ${r.pick([10, 5000])}`],
        '{"a"'
      )
    ],
    r => [
      'chunked over limit',
      Buffer.concat([
        Buffer.from(
          request(`POST ${r.pick(PATHS)} HTTP/1.1`, [
            'Host: x',
            'Content-Type: application/json',
            'Transfer-Encoding: chunked',
            `x-api-key: ${apiKey}`
          ])
        ),
        ...Array.from({ length: 17 }, () => Buffer.from(`10000\r\n${'x'.repeat(0x10000)}\r\n`)),
        Buffer.from('0\r\n\r\n')
      ])
    ],
    r => [
      'declared over limit',
      request(
        `POST ${r.pick(PATHS)} HTTP/1.1`,
        ['Host: x', 'Content-Type: application/json', `x-api-key: ${apiKey}`, 'Content-Length: 2000000'],
        '{'
      )
    ],
    r => [
      'malformed json',
      request(
        `POST ${r.pick(PATHS)} HTTP/1.1`,
        ['Host: x', 'Content-Type: application/json', `x-api-key: ${apiKey}`, 'Connection: close', 'Content-Length: 9'],
        r.pick(['{"a":\u0000}', '[[[[[[[[[', '{"__proto', '\u00ff\u00fe{}    '])
      )
    ],
    // Requests Node would answer itself with a bare text body: each must get an answer in the error shape.
    r => [
      'node answers',
      r.pick([
        `GET ${r.pick(PATHS)} HTTP/1.1\r\nConnection: close\r\n\r\n`,
        request(`POST ${r.pick(PATHS)} HTTP/1.1`, ['Host: x', 'Content-Type: application/json', 'Expect: foo'], '{}'),
        'CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n',
        `DELETE ${r.pick(PATHS)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`
      ])
    ],
    r => [
      'pipelined garbage',
      `GET /api/status HTTP/1.1\r\nHost: x\r\n\r\n${r.pick(['GARBAGE\r\n\r\n', 'GET / HTTP/1.1\r\nX Bad: y\r\n\r\n', '\u0000\r\n\r\n'])}`
    ]
  ]
  const slow: RawCase[] = [0, 1, 2].flatMap(i => [
    { name: 'slow headers', bytes: Buffer.from(`GET ${PATHS[i]} HTTP/1.1\r\nHost: x\r\nX-Partial: `), hold: true },
    {
      name: 'slow body',
      bytes: Buffer.from(
        request(
          `POST ${PATHS[i + 2]} HTTP/1.1`,
          ['Host: x', 'Content-Type: application/json', `x-api-key: ${apiKey}`, 'Content-Length: 100'],
          '{"a":'
        )
      ),
      hold: true
    }
  ])
  return [...slow, ...Array.from({ length: count - slow.length }, (_, i) => {
    const [name, data] = makers[i % makers.length](rng)
    return { name, bytes: Buffer.isBuffer(data) ? data : Buffer.from(data, 'latin1') }
  })]
}

/** Splits raw response bytes into answers (Content-Length framed; a truncated tail is ignored). */
export function parseAnswers (raw: Buffer): RawAnswer[] {
  const answers: RawAnswer[] = []
  let at = 0
  while (at < raw.length) {
    const headEnd = raw.indexOf('\r\n\r\n', at)
    if (headEnd < 0) break
    const [statusLine, ...lines] = raw.subarray(at, headEnd).toString('latin1').split('\r\n')
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0)
    const headers: Record<string, string> = {}
    for (const line of lines) {
      const colon = line.indexOf(':')
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
    }
    const length = Number(headers['content-length'] ?? 0)
    const body = raw.subarray(headEnd + 4, headEnd + 4 + length).toString('utf8')
    answers.push({ status, headers, body })
    at = headEnd + 4 + length
  }
  return answers
}

/** Writes one case (then half-closes) and collects what comes back until the server closes or `timeoutMs` passes. */
export function sendRaw (port: number, rawCase: RawCase, timeoutMs: number): Promise<RawOutcome> {
  return new Promise(resolve => {
    const chunks: Buffer[] = []
    const socket = net.connect({ host: '127.0.0.1', port })
    let settled = false
    const finish = (closed: boolean, timedOut: boolean) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      const raw = Buffer.concat(chunks)
      resolve({ rawCase, answers: parseAnswers(raw), closed, timedOut, raw: raw.toString('latin1').slice(0, 600) })
    }
    const timer = setTimeout(() => finish(false, true), timeoutMs)
    socket.on('data', chunk => chunks.push(chunk))
    socket.on('error', () => {})
    socket.on('close', () => finish(true, false))
    socket.on('connect', () => {
      // Half-close after writing: the server answers what it got, then closes (no keep-alive wait).
      if (rawCase.hold) socket.write(rawCase.bytes)
      else socket.end(rawCase.bytes)
    })
  })
}

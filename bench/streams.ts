// SSE streaming under load, in one run: N concurrent streams (BENCH_STREAMS, default 2000) at a fixed
// token rate (BENCH_TOKEN_RATE chunks of 48 characters per stream per second, default 10 — about 120
// model tokens/s) against (1) a bare Fastify SSE endpoint writing the same frames at the same rate and
// (2) the full stack — POST /api/stream/blog with the offline provider paced to that rate (auth, event
// log, metrics, ledger). Each server runs in its own child process, so its memory per stream and
// event-loop delay are its own. Rows: time to first byte (response headers) p50/p99 and token events
// delivered per second; notes: memory per stream, event-loop delay p99, time to first token.
// Run alone: `node --import=tsx bench/streams.ts` (BENCH_STREAMS, BENCH_TOKEN_RATE, BENCH_DATABASE_URL).
import { fork, type ChildProcess } from 'node:child_process'
import http from 'node:http'
import { once } from 'node:events'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { printTable, withRatios, type BenchResult } from './lib.js'

const KEY = 'amk_bench_streams_admin_key_0123456789'
const SELF = fileURLToPath(import.meta.url)

interface ServerStats { heapUsed: number, rss: number, external: number, eldP99Ms: number, eldMaxMs: number }
interface StreamTiming { ttfbMs: number, firstTokenMs: number, tokens: number, ok: boolean }

const quantile = (values: number[], q: number) => {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b)
  return sorted.length ? Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] * 10) / 10 : NaN
}

/** A server child: `bare` or `app`; answers 'stats' messages over IPC. */
async function startChild (
  kind: 'bare' | 'app',
  rate: number
): Promise<{ port: number; child: ChildProcess; stats: () => Promise<ServerStats> }> {
  const child = fork(SELF, ['--stream-bench-server', kind, String(rate)], {
    execArgv: ['--import=tsx', '--expose-gc'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  })
  const [message] = (await once(child, 'message')) as [{ port: number }]
  const stats = async () => {
    child.send('stats')
    const [reply] = (await once(child, 'message')) as [ServerStats]
    return reply
  }
  return { port: message.port, child, stats }
}

/** Opens one stream and reads it to the end, noting when headers and the first token arrive. */
function openStream (port: number, kind: 'bare' | 'app', i: number, opened: () => void): Promise<StreamTiming> {
  const started = performance.now()
  const body = kind === 'app' ? JSON.stringify({ topic: `Benchmark topic number ${i}` }) : undefined
  return new Promise(resolve => {
    const timing: StreamTiming = { ttfbMs: NaN, firstTokenMs: NaN, tokens: 0, ok: false }
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: kind === 'app' ? 'POST' : 'GET',
        path: kind === 'app' ? '/api/stream/blog' : '/sse',
        agent: false,
        headers:
          kind === 'app'
            ? { 'x-api-key': KEY, 'content-type': 'application/json', accept: 'text/event-stream' }
            : { accept: 'text/event-stream' }
      },
      res => {
        timing.ttfbMs = performance.now() - started
        opened()
        res.setEncoding('utf8')
        let tail = ''
        res.on('data', (chunk: string) => {
          const text = tail + chunk
          let at = text.indexOf('event: token')
          while (at >= 0) {
            if (timing.tokens++ === 0) timing.firstTokenMs = performance.now() - started
            at = text.indexOf('event: token', at + 12)
          }
          if (text.includes('event: complete')) timing.ok = res.statusCode === 200
          tail = text.slice(-12)
        })
        res.on('end', () => resolve(timing))
        res.on('error', () => resolve(timing))
      }
    )
    req.on('error', () => { opened(); resolve(timing) })
    req.end(body)
  })
}

async function load (kind: 'bare' | 'app', streams: number, rate: number) {
  const { port, child, stats } = await startChild(kind, rate)
  try {
    const base = await stats()
    const startedAt = performance.now()
    const results: Array<Promise<StreamTiming>> = []
    const pending = { count: 0 }
    // At most 200 connections waiting for their headers at once: a burst of 2,000 SYNs would overflow
    // the listen backlog and measure the kernel's SYN retry (1 s) instead of the server.
    for (let i = 0; i < streams; i++) {
      while (pending.count >= 200) await new Promise(resolve => setTimeout(resolve, 2))
      pending.count++
      results.push(openStream(port, kind, i, () => { pending.count-- }))
    }
    while (pending.count > 0) await new Promise(resolve => setTimeout(resolve, 5))
    const mid = await stats() // every stream is open and streaming
    const timings = await Promise.all(results)
    const seconds = (performance.now() - startedAt) / 1000
    const end = await stats()
    const tokens = timings.reduce((n, s) => n + s.tokens, 0)
    return {
      requestsPerSec: tokens / seconds,
      p50Ms: quantile(
        timings.map(s => s.ttfbMs),
        0.5
      ),
      p99Ms: quantile(
        timings.map(s => s.ttfbMs),
        0.99
      ),
      non2xx: timings.filter(s => !s.ok).length,
      errors: 0,
      firstToken: {
        p50: quantile(
          timings.map(s => s.firstTokenMs),
          0.5
        ),
        p99: quantile(
          timings.map(s => s.firstTokenMs),
          0.99
        )
      },
      memoryPerStreamKb: {
        heap: (mid.heapUsed - base.heapUsed) / streams / 1024,
        rss: (mid.rss - base.rss) / streams / 1024
      },
      eldP99Ms: end.eldP99Ms,
      eldMaxMs: end.eldMaxMs,
      tokensPerStream: tokens / streams
    }
  } finally {
    child.disconnect()
    child.kill()
  }
}

export async function run (): Promise<BenchResult> {
  const streams = Number(process.env.BENCH_STREAMS ?? 2000)
  const rate = Number(process.env.BENCH_TOKEN_RATE ?? 10)
  const bare = await load('bare', streams, rate)
  const full = await load('app', streams, rate)
  const rows = withRatios([
    {
      scenario: `bare Fastify SSE, ${streams} streams (req/s = token events/s; p50/p99 = time to first byte)`,
      ...bare
    },
    { scenario: `POST /api/stream/blog, ${streams} streams, offline provider at ${rate} tokens/s`, ...full }
  ])
  const kb = (n: number) => n.toFixed(1)
  const embeddedDatabase = 'embedded PGlite, whose queries run on the event loop; BENCH_DATABASE_URL selects PostgreSQL'
  const notes = [
    '| per stream, server process | bare Fastify SSE | full stack |',
    '|---|---:|---:|',
    `| heap per open stream (KB) | ${kb(bare.memoryPerStreamKb.heap)} | ${kb(full.memoryPerStreamKb.heap)} |`,
    `| RSS per open stream (KB) | ${kb(bare.memoryPerStreamKb.rss)} | ${kb(full.memoryPerStreamKb.rss)} |`,
    `| event-loop delay p99 / max (ms) | ${bare.eldP99Ms} / ${bare.eldMaxMs} | ${full.eldP99Ms} / ${full.eldMaxMs} |`,
    `| time to first token p50 / p99 (ms) | ${bare.firstToken.p50} / ${bare.firstToken.p99} ` +
      `| ${full.firstToken.p50} / ${full.firstToken.p99} |`,
    `| token events per stream | ${bare.tokensPerStream.toFixed(1)} | ${full.tokensPerStream.toFixed(1)} |`,
    'Streams that did not end with `complete` are counted under non-2xx. ' +
      'Memory is measured after a GC with every stream open; ' +
      'the full stack keeps every event in its replay log (STREAM_REPLAY_TTL) ' +
      'and writes a usage-ledger row per stream ' +
      `(${process.env.BENCH_DATABASE_URL ? 'PostgreSQL' : embeddedDatabase}).`
  ]
  return {
    title: `SSE streaming: ${streams} concurrent streams at ${rate} tokens/s each`,
    rows,
    notes: [notes.slice(0, -1).join('\n'), notes.at(-1)!]
  }
}

if (process.argv.includes('--stream-bench-server')) {
  const [kind, rate] = process.argv.slice(process.argv.indexOf('--stream-bench-server') + 1)
  const { serve } = await import('./streams-server.js')
  await serve(kind as 'bare' | 'app', Number(rate), KEY)
} else if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { title, rows, notes } = await run()
  printTable(rows, title, notes)
}

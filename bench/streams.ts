// SSE streaming, in one run (issue 16, acceptance 3). Each server runs in its own child process, so its
// memory, CPU and event-loop delay are its own:
// 1. CPU per streamed call: POST /api/stream/blog with the offline provider unpaced and its answer in 20
//    deltas, one connection, BENCH_CPU_STREAMS (default 1,000) streams one after the other; the server's
//    own process.cpuUsage() over them / streams (read without forcing a GC: a forced full GC of the heap
//    that 3,000 ended streams leave cost 50–95 ms, 0.2–0.3 ms a stream over 300), after BENCH_CPU_WARMUP
//    streams (default 3,000): the steady state. After 50, V8's worker threads were still compiling the app and
//    PGlite's WebAssembly with the optimizing tier, which the measured streams were charged for: 3.24 ms a
//    stream against 2.23 ms after 4,000 (6 Dec 2026). Peer: a bare node:http server writing the same frames.
// 2. Time to first byte with BENCH_TTFB_STREAMS (default 2,000) streams open at once (memory event log,
//    offline provider paced to 10 chunks/s).
// 3. BENCH_STREAMS (default 10,000) concurrent streams at BENCH_TOKEN_RATE chunks of 48 characters per
//    stream per second (default 3): the bare node:http SSE peer, the app with the memory event log and
//    with the Redis event log (BENCH_REDIS_URL, default redis://127.0.0.1:6379). Heap per stream is the
//    server's heap after a GC once every stream is open, minus its heap before, over the streams.
// Connections open at most 200 at a time waiting for their headers: a burst of SYNs would overflow the
// listen backlog and measure the kernel's SYN retry (1 s) instead of the server.
// The server children run src/ and bench/streams-server.ts compiled once per run (scripts/start.mjs's
// transpile, into a temporary directory under node_modules/.cache), as `npm start` runs the server, not under
// tsx: tsx transpiles with keepNames, which adds a `name` store to every closure made per stream (~3 KB each).
// Run alone: `node --import=tsx bench/streams.ts`.
import { fork, type ChildProcess } from 'node:child_process'
import http from 'node:http'
import { once } from 'node:events'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { ROOT, SRC, sourceFiles, transpile } from '../scripts/start.mjs'
import { printTable, withRatios, type BenchResult, type BenchRow, type TargetRow } from './lib.js'
import type { ServerKind } from './streams-server.js'

const KEY = 'amk_bench_streams_admin_key_0123456789'

interface ServerStats {
  heapUsed: number
  rss: number
  cpuMicros: number
  /** Streams open in the server right now. */
  open: number
  eldP99Ms: number
  eldMaxMs: number
}
interface StreamTiming { ttfbMs: number, firstTokenMs: number, tokens: number, ok: boolean }

const quantile = (values: number[], q: number) => {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b)
  return sorted.length ? Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] * 10) / 10 : NaN
}

/** A server child running `server` (the compiled bench/streams-server.js); answers 'stats' messages over IPC. */
async function startChild (
  server: string,
  kind: ServerKind,
  rate: number,
  chunks = 154
): Promise<{ port: number; child: ChildProcess; stats: () => Promise<ServerStats>; cpu: () => Promise<number> }> {
  const child = fork(server, ['--stream-bench-server', kind, String(rate), String(chunks), KEY], {
    // BENCH_STREAMS_NODE_ARGS: extra node flags for the server children (--cpu-prof, --max-old-space-size).
    execArgv: ['--expose-gc', ...(process.env.BENCH_STREAMS_NODE_ARGS ?? '').split(/\s+/).filter(Boolean)],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  })
  const [message] = (await once(child, 'message')) as [{ port: number }]
  const ask = async (what: 'stats' | 'cpu') => {
    child.send(what)
    const [reply] = (await once(child, 'message')) as [ServerStats]
    return reply
  }
  /** Memory (after a forced GC), CPU, open streams and loop delay. */
  const stats = () => ask('stats')
  /** The server's CPU (µs) alone: no forced GC. */
  const cpu = async () => (await ask('cpu')).cpuMicros
  return { port: message.port, child, stats, cpu }
}

/**
 * Disconnects a server child, which then exits by itself (so a `--cpu-prof` in BENCH_STREAMS_NODE_ARGS gets
 * written), killed if it has not exited within 30 s.
 */
async function stopChild (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, 'exit')
  child.disconnect()
  const timer = setTimeout(() => child.kill(), 30_000)
  await exited
  clearTimeout(timer)
}

/** Opens one stream and reads it to the end, noting when headers and the first token arrive. */
function openStream (port: number, kind: ServerKind, i: number, opened: () => void): Promise<StreamTiming> {
  const started = performance.now()
  const app = kind !== 'bare'
  const body = app ? JSON.stringify({ topic: `Benchmark topic number ${i}` }) : undefined
  return new Promise(resolve => {
    const timing: StreamTiming = { ttfbMs: NaN, firstTokenMs: NaN, tokens: 0, ok: false }
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: app ? 'POST' : 'GET',
        path: app ? '/api/stream/blog' : '/sse',
        agent: false,
        headers: app
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

interface LoadResult extends BenchRow {
  completed: number
  firstToken: { p50: number, p99: number }
  heapPerStreamKb: number
  rssPerStreamKb: number
  eldP99Ms: number
  eldMaxMs: number
  tokensPerStream: number
  openSeconds: number
  streamSeconds: number
  /** Streams open in the server when the last one got its headers. */
  openAtOnce: number
}

/** `streams` concurrent streams against a fresh child server of `kind`. */
async function load (
  server: string,
  kind: ServerKind,
  streams: number,
  rate: number,
  chunks: number,
  scenario: string
): Promise<LoadResult> {
  const { port, child, stats } = await startChild(server, kind, rate, chunks)
  try {
    const base = await stats()
    const startedAt = performance.now()
    const results: Array<Promise<StreamTiming>> = []
    const pending = { count: 0 }
    for (let i = 0; i < streams; i++) {
      while (pending.count >= 200) await new Promise(resolve => setTimeout(resolve, 2))
      pending.count++
      results.push(openStream(port, kind, i, () => { pending.count-- }))
    }
    while (pending.count > 0) await new Promise(resolve => setTimeout(resolve, 5))
    const openSeconds = (performance.now() - startedAt) / 1000
    // Every stream has its headers: those not yet ended are open (all of them, unless opening took longer
    // than a stream lasts). Memory per stream is over the streams open at this moment.
    const mid = await stats()
    const timings = await Promise.all(results)
    const seconds = (performance.now() - startedAt) / 1000
    const end = await stats()
    const tokens = timings.reduce((n, s) => n + s.tokens, 0)
    const completed = timings.filter(s => s.ok).length
    const ttfb = timings.map(s => s.ttfbMs)
    const firstToken = timings.map(s => s.firstTokenMs)
    return {
      scenario,
      ratio: 1,
      requestsPerSec: tokens / seconds,
      p50Ms: quantile(ttfb, 0.5),
      p99Ms: quantile(ttfb, 0.99),
      non2xx: streams - completed,
      errors: 0,
      completed,
      firstToken: { p50: quantile(firstToken, 0.5), p99: quantile(firstToken, 0.99) },
      heapPerStreamKb: (mid.heapUsed - base.heapUsed) / Math.max(1, mid.open) / 1024,
      rssPerStreamKb: (mid.rss - base.rss) / Math.max(1, mid.open) / 1024,
      openAtOnce: mid.open,
      eldP99Ms: end.eldP99Ms,
      eldMaxMs: end.eldMaxMs,
      tokensPerStream: tokens / streams,
      openSeconds,
      streamSeconds: seconds
    }
  } finally {
    await stopChild(child)
  }
}

/** Server CPU per stream: `count` streams one after the other on one connection at a time, after a warm-up. */
async function cpuPerStream (
  server: string,
  kind: ServerKind,
  count: number,
  warmup: number
): Promise<{ micros: number, tokens: number }> {
  const { port, child, cpu } = await startChild(server, kind, 0)
  try {
    for (let i = 0; i < warmup; i++) await openStream(port, kind, 1_000_000 + i, () => {})
    const before = await cpu()
    let tokens = 0
    for (let i = 0; i < count; i++) tokens += (await openStream(port, kind, i, () => {})).tokens
    const after = await cpu()
    return { micros: (after - before) / count, tokens: tokens / count }
  } finally {
    await stopChild(child)
  }
}

export async function run (): Promise<BenchResult> {
  // Under node_modules, so the compiled files resolve the project's packages.
  const cache = join(ROOT, 'node_modules', '.cache', 'amrikyy-agent-api')
  mkdirSync(cache, { recursive: true })
  const dir = mkdtempSync(join(cache, 'bench-streams-'))
  try {
    await transpile(await import('esbuild'), [...sourceFiles(SRC), join(ROOT, 'bench', 'streams-server.ts')], dir)
    return await measure(join(dir, 'bench', 'streams-server.js'))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

async function measure (server: string): Promise<BenchResult> {
  const streams = Number(process.env.BENCH_STREAMS ?? 10_000)
  const rate = Number(process.env.BENCH_TOKEN_RATE ?? 1)
  const chunks = Number(process.env.BENCH_STREAM_CHUNKS ?? 60)
  const ttfbStreams = Number(process.env.BENCH_TTFB_STREAMS ?? 2000)
  const cpuStreams = Number(process.env.BENCH_CPU_STREAMS ?? 1000)

  const cpuWarmup = Number(process.env.BENCH_CPU_WARMUP ?? 3000)
  const cpuBare = await cpuPerStream(server, 'bare', cpuStreams, cpuWarmup)
  const cpuApp = await cpuPerStream(server, 'app', cpuStreams, cpuWarmup)
  const ttfbScenario = `POST /api/stream/blog, ${ttfbStreams} streams, memory log, 10 chunks/s`
  const ttfb = await load(server, 'app', ttfbStreams, 10, 154, ttfbScenario)
  const bare = await load(server, 'bare', streams, rate, chunks, `bare node:http SSE, ${streams} streams`)
  const memory = await load(
    server, 'app', streams, rate, chunks, `POST /api/stream/blog, ${streams} streams, memory event log`
  )
  const redis = await load(
    server, 'app-redis', streams, rate, chunks, `POST /api/stream/blog, ${streams} streams, Redis event log`
  )

  const rows = withRatios([bare, memory, redis, ttfb])
  const kb = (n: number) => n.toFixed(1)
  const ms = (micros: number) => `${(micros / 1000).toFixed(2)} ms`
  const table = [
    '| per stream, server process | bare node:http | memory log | Redis log |',
    '|---|---:|---:|---:|',
    `| heap per open stream (KB) | ${kb(bare.heapPerStreamKb)} | ${kb(memory.heapPerStreamKb)} | ` +
      `${kb(redis.heapPerStreamKb)} |`,
    `| RSS per open stream (KB) | ${kb(bare.rssPerStreamKb)} | ${kb(memory.rssPerStreamKb)} | ` +
      `${kb(redis.rssPerStreamKb)} |`,
    `| streams completed | ${bare.completed} | ${memory.completed} | ${redis.completed} |`,
    `| open at once (when the last one opened) | ${bare.openAtOnce} | ${memory.openAtOnce} | ${redis.openAtOnce} |`,
    `| token events per stream | ${bare.tokensPerStream.toFixed(1)} | ${memory.tokensPerStream.toFixed(1)} | ` +
      `${redis.tokensPerStream.toFixed(1)} |`,
    `| seconds to open all / whole run | ${bare.openSeconds.toFixed(1)} / ${bare.streamSeconds.toFixed(1)} | ` +
      `${memory.openSeconds.toFixed(1)} / ${memory.streamSeconds.toFixed(1)} | ` +
      `${redis.openSeconds.toFixed(1)} / ${redis.streamSeconds.toFixed(1)} |`,
    `| event-loop delay p99 / max (ms) | ${bare.eldP99Ms} / ${bare.eldMaxMs} | ` +
      `${memory.eldP99Ms} / ${memory.eldMaxMs} | ${redis.eldP99Ms} / ${redis.eldMaxMs} |`,
    `| time to first token p50 / p99 (ms) | ${bare.firstToken.p50} / ${bare.firstToken.p99} | ` +
      `${memory.firstToken.p50} / ${memory.firstToken.p99} | ${redis.firstToken.p50} / ${redis.firstToken.p99} |`
  ].join('\n')
  const cpuNote =
    `CPU per streamed call (${cpuApp.tokens.toFixed(0)} token events, unpaced, one connection, ` +
    `${cpuStreams} streams after ${cpuWarmup} to warm up, BENCH_CPU_WARMUP): ` +
    `app ${ms(cpuApp.micros)}, bare node:http writing the same frames ${ms(cpuBare.micros)}.`
  const notes = [
    table,
    cpuNote,
    `Rows: req/s = token events delivered per second, p50/p99 = time to first byte. ${streams} streams of ` +
      `${chunks} chunks (BENCH_STREAM_CHUNKS) at ${rate} chunks/s (BENCH_TOKEN_RATE); ${ttfbStreams} streams of ` +
      '154 chunks of 48 characters at 10 chunks/s for the time to first byte. Memory per stream is over the ' +
      'streams open when the last one opened. Streams that did not end with ' +
      '`complete` count as non-2xx. The usage ledger is ' +
      `${process.env.BENCH_DATABASE_URL ? 'PostgreSQL' : 'embedded PGlite (BENCH_DATABASE_URL: PostgreSQL)'}. ` +
      'The upstream replays one offline blog post (built once) to every stream, as a real upstream sends ' +
      'its answer over the wire; the bare peer writes the same chunks.'
  ]
  const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`
  const heapTarget = (log: string, row: LoadResult): TargetRow => ({
    what: `${streams} streams, ${log} event log: heap per open stream`,
    measured: `${kb(row.heapPerStreamKb)} KB`,
    peer: `bare node:http ${kb(bare.heapPerStreamKb)} KB`,
    ratio: ratio(row.heapPerStreamKb, bare.heapPerStreamKb),
    target: '≤ 2× bare node:http',
    met: row.heapPerStreamKb <= 2 * bare.heapPerStreamKb
  })
  const completion = (log: string, row: LoadResult): TargetRow => ({
    what: `${streams} concurrent streams, ${log} event log: completed, open at once`,
    measured: `${((100 * row.completed) / streams).toFixed(1)} %, ${row.openAtOnce} open`,
    peer: `bare node:http ${((100 * bare.completed) / streams).toFixed(1)} %, ${bare.openAtOnce} open`,
    ratio: '—',
    target: `100 %, ${streams} open`,
    met: row.completed === streams && row.openAtOnce === streams
  })
  const targets: TargetRow[] = [
    {
      what:
        `streamed call (${cpuApp.tokens.toFixed(0)} deltas), 1 connection, ` +
        `${process.env.BENCH_DATABASE_URL ? 'PostgreSQL' : 'PGlite'} usage ledger: server CPU per stream`,
      measured: ms(cpuApp.micros),
      peer: `bare node:http ${ms(cpuBare.micros)}`,
      ratio: ratio(cpuApp.micros, cpuBare.micros),
      target: '≤ 1 ms',
      met: cpuApp.micros <= 1000
    },
    heapTarget('memory', memory),
    heapTarget('Redis', redis),
    completion('memory', memory),
    completion('Redis', redis),
    {
      what: `${ttfbStreams} streams open at once: time to first byte p99`,
      measured: `${ttfb.p99Ms} ms`,
      peer: '—',
      ratio: '—',
      target: '≤ 1 s',
      met: ttfb.p99Ms <= 1000 && ttfb.completed === ttfbStreams
    }
  ]
  return {
    title: `SSE streaming: CPU per streamed call, ${ttfbStreams} and ${streams} concurrent streams`,
    rows,
    notes,
    targets
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { title, rows, notes } = await run()
  printTable(rows, title, notes)
}

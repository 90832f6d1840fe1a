// The server side of bench/streams.ts, run in a child process: a bare `node:http` SSE server (no
// framework) that writes a blog post's token frames at a fixed rate, or the full app (memory event log,
// or the Redis event log with REDIS_URL) whose upstream replays the same post at the same rate. Rate 0 is the
// CPU mode: no pacing, and the answer in 20 deltas. Reports memory, CPU and event-loop delay over IPC.
import http from 'node:http'
import Fastify, { type FastifyInstance } from 'fastify'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import app, { serverOptions } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { offlineBuilder } from '../src/agents/index.js'
import { createOfflineProvider, OFFLINE_MODEL } from '../src/llm/offline.js'
import { CancelledError } from '../src/errors.js'
import type { LlmProvider } from '../src/llm/types.js'
import { encodeEvent, encodeRetry, SSE_HEADERS } from '../src/streams/events.js'

export type ServerKind = 'bare' | 'app' | 'app-redis'

/** Deltas per streamed call in CPU mode (rate 0): issue 16's "streamed call (20 deltas)". */
export const CPU_DELTAS = 20

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))

/** The blog post the offline provider writes for a bench topic (same length as the app's answers). */
function blogText (): string {
  return JSON.stringify(
    offlineBuilder()({
      agent: 'content',
      method: 'generateBlogPost',
      input: {
        topic: 'Benchmark topic number 1000',
        type: 'how-to',
        tone: 'professional',
        length: 1200,
        keywords: [],
        targetAudience: 'general readers'
      }
    })
  )
}

/**
 * Characters per chunk: what cuts the post into `chunks` deltas (BENCH_STREAM_CHUNKS: 154 makes the 48
 * characters, about 12 model tokens, of a real delta); in CPU mode (rate 0), 20 deltas.
 */
const chunkSizeFor = (rate: number, chunks: number) => Math.ceil(blogText().length / (rate > 0 ? chunks : CPU_DELTAS))

/**
 * The upstream: the offline provider's blog post, built once and replayed to every stream in chunks, one
 * macrotask apart (as socket reads would be), with a pause between deltas when paced (`rate` chunks per
 * second). A real upstream sends its answer over the wire; the offline provider would build a whole answer
 * per stream (CPU and memory that are the model's, not the gateway's), so the bench replays one instead.
 */
function upstream (rate: number, count: number): LlmProvider {
  const offline = createOfflineProvider({ build: offlineBuilder() })
  const text = blogText()
  const size = chunkSizeFor(rate, count)
  const chunks = text.match(new RegExp(`[\\s\\S]{1,${size}}`, 'g')) ?? []
  const usage = { inputTokens: 400, outputTokens: Math.ceil(text.length / 4) }
  const pause = (ms: number) => new Promise(resolve => (ms > 0 ? setTimeout(resolve, ms) : setImmediate(resolve)))
  return {
    ...offline,
    async * stream (request) {
      for (const delta of chunks) {
        await pause(rate > 0 ? 1000 / rate : 0)
        if (request.signal?.aborted) throw new CancelledError('The request was cancelled')
        yield { type: 'delta', delta }
      }
      yield { type: 'done', usage, model: OFFLINE_MODEL }
    }
  }
}

/** The peer: plain node:http, the same frames (retry, connected, tokens, complete) at the same rate. */
let bareOpen = 0

function bare (rate: number, count: number): http.Server {
  const text = blogText()
  const size = chunkSizeFor(rate, count)
  const chunks = text.match(new RegExp(`[\\s\\S]{1,${size}}`, 'g')) ?? []
  return http.createServer((req, res) => {
    if (req.url !== '/sse') {
      res.writeHead(404).end()
      return
    }
    bareOpen++
    res.once('close', () => { bareOpen-- })
    res.writeHead(200, SSE_HEADERS)
    res.write(encodeRetry(1000))
    let seq = 0
    res.write(
      encodeEvent('bare', {
        seq: ++seq,
        event: 'connected',
        data: { streamId: 'bare', agent: 'content', method: 'generateBlogPost' }
      })
    )
    const send = async () => {
      for (const [index, chunk] of chunks.entries()) {
        if (rate > 0) await sleep(1000 / rate)
        if (res.destroyed) return
        res.write(encodeEvent('bare', { seq: ++seq, event: 'token', data: { chunk, index } }))
      }
      res.end(
        encodeEvent('bare', {
          seq: ++seq,
          event: 'complete',
          data: { durationMs: 0, usage: { inputTokens: 0, outputTokens: 0, costUsd: 0 } }
        })
      )
    }
    send().catch(() => res.destroy())
  })
}

async function full (kind: ServerKind, rate: number, chunks: number, key: string): Promise<FastifyInstance> {
  // BENCH_DATABASE_URL: a real PostgreSQL for the usage ledger; else PGlite as `npm start` runs it, in a data
  // directory of its own (its files, and the usage journal of 'durable'), removed when the child exits.
  const databaseUrl = process.env.BENCH_DATABASE_URL
  const dataDir = databaseUrl ? 'memory://' : mkdtempSync(join(tmpdir(), 'amk-bench-streams-'))
  if (!databaseUrl) process.once('exit', () => rmSync(dataDir, { recursive: true, force: true }))
  const config = loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    DATA_DIR: dataDir,
    ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
    VALID_API_KEYS: `${key}:admin`,
    MAX_CONCURRENT_STREAMS: '100000',
    MAX_CONCURRENT_STREAMS_PER_CALLER: '100000',
    // Write coalescing (default 16 ms) can be set for an A/B: STREAM_FLUSH_MS=0 writes every delta on its own.
    ...(process.env.STREAM_FLUSH_MS ? { STREAM_FLUSH_MS: process.env.STREAM_FLUSH_MS } : {}),
    ...(kind === 'app-redis'
      ? {
          REDIS_URL: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379',
          REDIS_KEY_PREFIX: `bench-streams-${process.pid}:`
        }
      : {})
  })
  const server = Fastify({ ...serverOptions(config, false), pluginTimeout: 60_000 })
  await server.register(app, { config, llmProvider: upstream(rate, chunks) })
  return server
}

export async function serve (kind: ServerKind, rate: number, chunks: number, key: string): Promise<void> {
  let port: number
  let open = () => bareOpen
  if (kind === 'bare') {
    const server = bare(rate, chunks)
    server.listen(0, '127.0.0.1', 4096)
    await new Promise(resolve => server.once('listening', resolve))
    port = (server.address() as AddressInfo).port
  } else {
    const server = await full(kind, rate, chunks, key)
    open = () => server.streams.service.connections.size
    await server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 })
    port = (server.server.address() as AddressInfo).port
  }
  const delay = monitorEventLoopDelay({ resolution: 10 })
  delay.enable()
  const gc = (globalThis as { gc?: () => void }).gc
  let calls = 0
  process.on('message', message => {
    const cpu = process.cpuUsage()
    // 'cpu': the CPU reading alone. The CPU section reads it without the forced full GC of 'stats', which cost
    // 50–95 ms with the heap of 3,000 ended streams (kept STREAM_ENDED_REPLAY_TTL): charged to the streams
    // measured after it, that was 0.2–0.3 ms per stream of a GC no server ever runs (6 Dec 2026).
    if (message === 'cpu') {
      process.send!({ cpuMicros: cpu.user + cpu.system })
      return
    }
    gc?.()
    const memory = process.memoryUsage()
    process.send!({
      heapUsed: memory.heapUsed,
      rss: memory.rss,
      cpuMicros: cpu.user + cpu.system,
      open: open(),
      eldP99Ms: Math.round(delay.percentile(99) / 1e4) / 100,
      eldMaxMs: Math.round(delay.max / 1e4) / 100
    })
    // The first call is the baseline before any stream: the delay histogram covers the load only.
    if (calls++ === 0) delay.reset()
  })
  process.on('disconnect', () => process.exit(0))
  process.send!({ port })
}

// Forked (compiled) by bench/streams.ts: `--stream-bench-server <kind> <rate> <chunks> <admin key>`.
if (process.argv.includes('--stream-bench-server')) {
  const [kind, rate, chunks, key] = process.argv.slice(process.argv.indexOf('--stream-bench-server') + 1)
  await serve(kind as ServerKind, Number(rate), Number(chunks), key)
}

// The server side of bench/streams.ts, run in a child process: either a bare Fastify SSE endpoint that
// writes a blog post's tokens at a fixed rate, or the full app with the offline provider paced to the
// same rate. Reports memory and event-loop delay over IPC ('stats').
import Fastify, { type FastifyInstance } from 'fastify'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import type { AddressInfo } from 'node:net'
import app, { serverOptions } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { offlineBuilder } from '../src/agents/index.js'
import { createOfflineProvider } from '../src/llm/offline.js'
import type { LlmProvider } from '../src/llm/types.js'
import { openDatabase } from '../src/store/database.js'
import { migrate } from '../src/store/migrate.js'
import { encodeEvent, encodeRetry, SSE_HEADERS } from '../src/streams/events.js'

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))

/** The offline provider, with a pause between deltas: a model producing `rate` tokens per second. */
function paced (inner: LlmProvider, rate: number): LlmProvider {
  return {
    ...inner,
    async * stream (request) {
      for await (const chunk of inner.stream(request)) {
        if (chunk.type === 'delta') await sleep(1000 / rate)
        yield chunk
      }
    }
  }
}

async function bare (rate: number): Promise<FastifyInstance> {
  const text = JSON.stringify(
    offlineBuilder()({
      agent: 'content',
      method: 'generateBlogPost',
      input: {
        topic: 'Benchmark topic',
        type: 'how-to',
        tone: 'professional',
        length: 1200,
        keywords: [],
        targetAudience: 'general readers'
      }
    })
  )
  const chunks = text.match(/[\s\S]{1,48}/g) ?? []
  const server = Fastify()
  server.get('/sse', async (_request, reply) => {
    reply.hijack()
    const res = reply.raw
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
    for (const [index, chunk] of chunks.entries()) {
      await sleep(1000 / rate)
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
  })
  return server
}

async function full (rate: number, key: string): Promise<FastifyInstance> {
  const config = loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    DATA_DIR: 'memory://',
    VALID_API_KEYS: `${key}:admin`,
    MAX_CONCURRENT_STREAMS: '100000',
    MAX_CONCURRENT_STREAMS_PER_CALLER: '100000'
  })
  // BENCH_DATABASE_URL: a real PostgreSQL for the usage ledger (PGlite runs its queries on the event loop).
  const databaseUrl = process.env.BENCH_DATABASE_URL
  const db = await openDatabase(databaseUrl ? { databaseUrl, dataDir: '' } : { dataDir: 'memory://' })
  await migrate(db)
  const server = Fastify({ ...serverOptions(config, false), pluginTimeout: 60_000 })
  await server.register(app, {
    config,
    db,
    llmProvider: paced(createOfflineProvider({ build: offlineBuilder() }), rate)
  })
  server.addHook('onClose', () => db.close())
  return server
}

export async function serve (kind: 'bare' | 'app', rate: number, key: string): Promise<void> {
  const server = kind === 'bare' ? await bare(rate) : await full(rate, key)
  await server.listen({ port: 0, host: '127.0.0.1' })
  const delay = monitorEventLoopDelay({ resolution: 10 })
  delay.enable()
  const gc = (globalThis as { gc?: () => void }).gc
  let calls = 0
  process.on('message', () => {
    gc?.()
    const memory = process.memoryUsage()
    process.send!({
      heapUsed: memory.heapUsed,
      rss: memory.rss,
      external: memory.external,
      eldP99Ms: Math.round(delay.percentile(99) / 1e4) / 100,
      eldMaxMs: Math.round(delay.max / 1e4) / 100
    })
    // The first call is the baseline before any stream: the delay histogram covers the load only.
    if (calls++ === 0) delay.reset()
  })
  process.on('disconnect', () => process.exit(0))
  process.send!({ port: (server.server.address() as AddressInfo).port })
}

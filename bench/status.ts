// Framework overhead on GET /api/status, in one run: bare Fastify answering the same JSON with the same
// handler work, against this app with every plugin registered (helmet, CORS, compression, request ids,
// auth policy, rate-limit hooks, metrics, error handler…), with logging off and with info logging.
// Run alone: `node --import=tsx bench/status.ts` (BENCH_DURATION=s, BENCH_CONNECTIONS=n, BENCH_ROUNDS=n).
import Fastify, { type FastifyInstance } from 'fastify'
import { createWriteStream } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { pathToFileURL } from 'node:url'
import app, { loggerOptions, serverOptions } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { compare, printTable, type BenchResult } from './lib.js'

const PATH = '/api/status'

async function bare (): Promise<FastifyInstance> {
  const server = Fastify()
  const mb = (bytes: number) => Math.round(bytes / 1048576 * 10) / 10
  server.get(PATH, async () => {
    const memory = process.memoryUsage()
    return {
      service: 'amrikyy-agent-api',
      version: '1.0.0',
      environment: 'production',
      ready: true,
      uptimeSeconds: Math.round(process.uptime()),
      memory: { rssMb: mb(memory.rss), heapUsedMb: mb(memory.heapUsed), heapTotalMb: mb(memory.heapTotal) },
      timestamp: new Date().toISOString()
    }
  })
  return server
}

async function fullApp (logLevel: 'silent' | 'info'): Promise<FastifyInstance> {
  const config = loadConfig({
    NODE_ENV: 'production',
    LLM_PROVIDER: 'offline',
    JWT_SECRET: randomBytes(32).toString('hex'),
    LOG_LEVEL: logLevel,
    DATA_DIR: 'memory://'
  })
  // Pino as in production, writing to /dev/null so the terminal is not the bottleneck.
  const logger = { ...(loggerOptions(config) as object), stream: createWriteStream('/dev/null') }
  const server = Fastify(serverOptions(config, logger))
  await server.register(app, { config })
  await server.ready()
  return server
}

export async function run (): Promise<BenchResult> {
  const rows = await compare([
    { scenario: 'bare Fastify, same handler', start: bare },
    { scenario: 'this app, all plugins, LOG_LEVEL=silent', start: () => fullApp('silent') },
    { scenario: 'this app, all plugins, LOG_LEVEL=info', start: () => fullApp('info') }
  ], { path: PATH })
  return {
    title: `GET ${PATH}: this app vs bare Fastify`,
    rows,
    notes: ['autocannon and the server share this process; compare ratios, not absolute numbers, across machines.']
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const result = await run()
  printTable(result.rows, result.title, result.notes)
}

// Shared benchmark tools: measure a URL or a Fastify instance with autocannon (in-process), turn results
// into rows with a ratio to a baseline, and print them as a Markdown table. A scenario module in bench/
// exports `run()` returning rows (or { title, rows, notes }); bench/run.ts finds and runs every one.
import autocannon from 'autocannon'
import net from 'node:net'
import { spawn, type ChildProcess } from 'node:child_process'
import type { FastifyInstance } from 'fastify'
import pg from 'pg'

export interface Measurement {
  requestsPerSec: number
  p50Ms: number
  p99Ms: number
  /** Responses outside 2xx (a scenario that should be all 2xx reports its errors here). */
  non2xx: number
  errors: number
}

export interface BenchRow extends Measurement {
  scenario: string
  /** Throughput relative to the baseline row (the first one unless told otherwise). */
  ratio: number
}

export interface BenchResult { title?: string, rows: BenchRow[], notes?: string[], targets?: TargetRow[] }

/**
 * One performance target (issue 16's acceptance) as a module measured it in this run: bench/run.ts gathers the
 * rows of every module into one closing table, so a whole run ends with every target, its figure and its peer.
 */
export interface TargetRow {
  /** What is measured, e.g. "request path, API key + Redis limiter: CPU per request". */
  what: string
  /** This service's figure, with its unit ("58 µs"). */
  measured: string
  /** The peer and its figure ("minimal equivalent 41 µs"), or "—" for an absolute target. */
  peer: string
  /** The ratio to the peer ("1.41×"), or "—". */
  ratio: string
  /** The target as the issue states it ("≤ 1.5× minimal"). */
  target: string
  met: boolean
}

/** The closing table of a run: every module's targets. */
export function formatTargets (rows: Array<TargetRow & { module: string }>): string {
  const header = ['module', 'what', 'this service', 'peer', 'ratio', 'target', 'met']
  const lines = rows.map(r => [r.module, r.what, r.measured, r.peer, r.ratio, r.target, r.met ? 'yes' : '**no**'])
  return [header, header.map(() => '---'), ...lines].map(cells => `| ${cells.join(' | ')} |`).join('\n')
}

export interface MeasureOptions {
  path?: string
  method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'
  headers?: Record<string, string>
  body?: string
  /** Seconds of measurement (default BENCH_DURATION or 5). */
  duration?: number
  /** Concurrent connections (default BENCH_CONNECTIONS or 50). */
  connections?: number
  /** Seconds of unmeasured warm-up first (default 1). */
  warmup?: number
  pipelining?: number
}

/** From the environment: BENCH_DURATION seconds, BENCH_CONNECTIONS, BENCH_ROUNDS (for compare()). */
export function settings (): { duration: number, connections: number, rounds: number } {
  return {
    duration: Number(process.env.BENCH_DURATION ?? 5),
    connections: Number(process.env.BENCH_CONNECTIONS ?? 50),
    rounds: Math.max(1, Number(process.env.BENCH_ROUNDS ?? 1))
  }
}

async function urlOf (target: string | FastifyInstance): Promise<string> {
  if (typeof target === 'string') return target
  if (!target.server.listening) return target.listen({ port: 0, host: '127.0.0.1' })
  const address = target.server.address()
  if (address && typeof address === 'object') return `http://127.0.0.1:${address.port}`
  throw new Error('cannot tell where the server listens')
}

/** Loads `target` (a base URL, or a Fastify instance, listened on a free port if needed) with autocannon. */
export async function measure (target: string | FastifyInstance, options: MeasureOptions = {}): Promise<Measurement> {
  const defaults = settings()
  const base = await urlOf(target)
  const request = {
    url: base + (options.path ?? ''),
    method: options.method ?? 'GET',
    headers: options.headers,
    body: options.body,
    connections: options.connections ?? defaults.connections,
    pipelining: options.pipelining ?? 1
  }
  if ((options.warmup ?? 1) > 0) await autocannon({ ...request, duration: options.warmup ?? 1 })
  const result = await autocannon({ ...request, duration: options.duration ?? defaults.duration })
  return {
    requestsPerSec: result.requests.average,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts
  }
}

export interface Contender {
  scenario: string
  start: () => Promise<FastifyInstance>
  options?: MeasureOptions
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]

/**
 * Measures several servers in the same run: all are started first, then measured in turn for `rounds`
 * rounds (BENCH_ROUNDS), so a noisy neighbour hurts every contender alike; each figure is the median of its
 * rounds. Ratios are to the first contender. Every server is closed at the end.
 */
export async function compare (
  contenders: Contender[],
  common: MeasureOptions = {},
  rounds = settings().rounds
): Promise<BenchRow[]> {
  const servers: FastifyInstance[] = []
  try {
    for (const contender of contenders) servers.push(await contender.start())
    const samples: Measurement[][] = contenders.map(() => [])
    for (let round = 0; round < rounds; round++) {
      for (const [i, contender] of contenders.entries()) {
        samples[i].push(await measure(servers[i], { ...common, ...contender.options }))
      }
    }
    return withRatios(
      contenders.map((contender, i) => ({
        scenario: contender.scenario,
        requestsPerSec: median(samples[i].map(m => m.requestsPerSec)),
        p50Ms: median(samples[i].map(m => m.p50Ms)),
        p99Ms: median(samples[i].map(m => m.p99Ms)),
        non2xx: samples[i].reduce((sum, m) => sum + m.non2xx, 0),
        errors: samples[i].reduce((sum, m) => sum + m.errors, 0)
      }))
    )
  } finally {
    await closeAll(...servers)
  }
}

/** Adds `ratio` (requests/s relative to the row at `baseline`) to each row. */
export function withRatios (rows: Array<Measurement & { scenario: string }>, baseline = 0): BenchRow[] {
  const base = rows[baseline]?.requestsPerSec || 1
  return rows.map(row => ({ ...row, ratio: Math.round((row.requestsPerSec / base) * 100) / 100 }))
}

/** A Markdown table: scenario, req/s, p50, p99, non-2xx, ratio vs baseline. */
export function formatTable (rows: BenchRow[]): string {
  const header = ['scenario', 'req/s', 'p50 ms', 'p99 ms', 'non-2xx', 'vs baseline']
  const lines = rows.map(r => [
    r.scenario, String(Math.round(r.requestsPerSec)), String(r.p50Ms), String(r.p99Ms),
    String(r.non2xx + (r.errors ?? 0)), `${r.ratio.toFixed(2)}×`
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map(l => l[i].length)))
  const format = (cells: string[]) =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ')} |`
  const rule = `|${widths.map((w, i) => '-'.repeat(w + 1) + (i === 0 ? '-' : ':')).join('|')}|`
  return [format(header), rule, ...lines.map(format)].join('\n')
}

export function printTable (rows: BenchRow[], title?: string, notes: string[] = []): void {
  const out = [title ? `\n## ${title}\n` : '', formatTable(rows), ...notes.map(note => `\n${note}`)]
  process.stdout.write(out.join('\n') + '\n')
}

/** Closes every server even when one fails; for `finally` blocks. */
export async function closeAll (...servers: Array<{ close(): Promise<unknown> } | null | undefined>): Promise<void> {
  await Promise.allSettled(servers.map(server => server?.close()))
}

const percentile = (sorted: number[], p: number) =>
  sorted.length ? Math.round(sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] * 100) / 100 : 0

/**
 * Runs `once` from `concurrency` in-process workers for `seconds` after a one-second warm-up: completions/s
 * and latency.
 */
export async function loadInProcess (
  once: () => Promise<unknown>,
  seconds: number,
  concurrency: number
): Promise<Measurement> {
  const pass = async (ms: number) => {
    const latencies: number[] = []
    let errors = 0
    const end = performance.now() + ms
    const worker = async () => {
      while (performance.now() < end) {
        const started = performance.now()
        try {
          await once()
        } catch {
          errors++
        }
        latencies.push(performance.now() - started)
      }
    }
    const started = performance.now()
    await Promise.all(Array.from({ length: concurrency }, worker))
    return { latencies, errors, elapsed: performance.now() - started }
  }
  await pass(1000)
  const { latencies, errors, elapsed } = await pass(seconds * 1000)
  latencies.sort((a, b) => a - b)
  return {
    requestsPerSec: (latencies.length - errors) / (elapsed / 1000),
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    non2xx: 0,
    errors
  }
}

/** A TCP port free on 127.0.0.1 right now (for a server a scenario starts in a child process). */
export async function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer().on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0))
    })
  })
}

export interface ServerProcess {
  port: number
  child: ChildProcess
  /** Bytes the server wrote to stdout (its log) so far. */
  logBytes(): number
  /** SIGTERM, then SIGKILL after 15 s; resolves when the process has exited. */
  stop(): Promise<void>
}

/** The environment of a benchmark's server process: production, offline provider, on `port`; `env` on top. */
export function serverEnv (port: number, env: Record<string, string>): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/tmp',
    PORT: String(port),
    HOST: '127.0.0.1',
    NODE_ENV: 'production',
    LLM_PROVIDER: 'offline',
    DATA_DIR: 'memory://',
    JWT_SECRET: 'bench-jwt-secret-0123456789abcdefghijklmn',
    ...env
  }
}

/**
 * Runs `src/server.ts` in a child process (production mode, offline provider, embedded in-memory database)
 * with `env` on top, and resolves once /api/health/ready answers 200, so its CPU and log are its own.
 */
export async function startServerProcess (env: Record<string, string>): Promise<ServerProcess> {
  const port = await freePort()
  const child = spawn(process.execPath, ['--import=tsx', 'src/server.ts'], {
    cwd: new URL('../', import.meta.url),
    env: serverEnv(port, env),
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let bytes = 0
  let errors = ''
  child.stdout?.on('data', (chunk: Buffer) => { bytes += chunk.length })
  child.stderr?.on('data', (chunk: Buffer) => { errors = (errors + chunk.toString()).slice(-4000) })
  const deadline = Date.now() + 120_000
  const ready = () => fetch(`http://127.0.0.1:${port}/api/health/ready`, { signal: AbortSignal.timeout(1000) })
    .then(res => res.status === 200, () => false)
  while (!(await ready())) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`the server did not start:\n${errors}`)
    }
    await new Promise(resolve => setTimeout(resolve, 200))
  }
  return {
    port,
    child,
    logBytes: () => bytes,
    stop: async () => {
      if (child.exitCode !== null) return
      const exited = new Promise(resolve => child.once('exit', resolve))
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
      await exited
      clearTimeout(timer)
    }
  }
}

/** Whether a TCP server (Redis, PostgreSQL) answers at `url` within half a second. */
export async function reachable (url: string, defaultPort: number): Promise<boolean> {
  const { hostname, port } = new URL(url)
  return new Promise(resolve => {
    const socket = net.connect({ host: hostname, port: Number(port || defaultPort) }, () => {
      socket.end()
      resolve(true)
    })
    socket.setTimeout(500, () => { socket.destroy(); resolve(false) })
    socket.on('error', () => resolve(false))
  })
}

/**
 * A database of its own, `name`, on the PostgreSQL server of `admin` (BENCH_POSTGRES_URL by default), with the
 * function that drops it; null when the server is unreachable. Benchmarks write rows other tests would count.
 */
export async function scratchDatabase (
  name: string,
  admin = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
): Promise<{ url: string, drop(): Promise<void> } | null> {
  if (!await reachable(admin, 5432)) return null
  const run = async (sql: string) => {
    const client = new pg.Client({ connectionString: admin })
    await client.connect()
    try { await client.query(sql) } finally { await client.end() }
  }
  await run(`CREATE DATABASE ${name}`)
  const url = new URL(admin)
  url.pathname = `/${name}`
  return { url: url.toString(), drop: () => run(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) }
}

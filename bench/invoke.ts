// Agent invoke overhead through the offline provider, cache off: the provider called directly in-process
// (the baseline: building the answer is all the "model" work there is), agents.invoke() in-process (input
// validation, prompt, output validation, usage-ledger row on PGlite, metrics, hooks), and
// POST /api/agents/travel/searchFlights over HTTP (plus auth, rate limits, JSON); a cache-hit row for scale.
// Then the same uncached invoke through a 0 ms fake OpenAI-compatible provider (a child process) at one
// connection: the provider called directly is the baseline, and the table gives the latency the service adds
// (p50/p99, measured by a client in another child process) and the CPU per call of this process. A minimal
// forwarder (a Fastify route that only relays the call to the provider and answers the parsed result) is the
// floor any HTTP service calling that provider pays; the CPU target rows name it next to the direct call.
// Each HTTP row of the provider section is measured after BENCH_INVOKE_WARMUP seconds of the same calls
// (default 8): CPU per call is the steady state. A new PGlite instance runs its WebAssembly in V8's baseline
// tier at first, and V8's worker threads compile its hot functions again with the optimizing tier during its
// first few thousand statements, about 1 ms of CPU per call on those threads at the start, under 0.1 ms once
// done (measured per 2 s window, 6 Dec 2026). With a 1 s warm-up that one-time compilation was counted as a
// cost of every call.
// Run alone: `node --import=tsx bench/invoke.ts` (BENCH_DURATION=s, BENCH_CONNECTIONS=n; BENCH_REDIS_URL
// to run the provider section with Redis).
import Fastify, { type FastifyInstance } from 'fastify'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { Pool } from 'undici'
import app, { serverOptions } from '../src/app.js'
import type { Caller } from '../src/auth/roles.js'
import { loadConfig } from '../src/config.js'
import type { GenerateRequest } from '../src/llm/types.js'
import {
  closeAll, formatTable, loadInProcess, measure, scratchDatabase, settings, withRatios, type BenchRow, type TargetRow
} from './lib.js'

const KEY = 'amk_bench_invoke_user_key_0123456789'
const CALLER: Caller = { id: 'bench-invoke', kind: 'api-key', role: 'user' }
const INPUT = { from: 'Cairo', to: 'Paris', date: '2030-05-01', passengers: 2 }
const HUGE = 100_000_000
const WARMUP_SECONDS = Number(process.env.BENCH_INVOKE_WARMUP ?? 8)

const ROOT = fileURLToPath(new URL('..', import.meta.url))

async function instance (env: Record<string, string> = {}): Promise<FastifyInstance> {
  const config = loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    DATA_DIR: 'memory://',
    VALID_API_KEYS: `${KEY}:user`,
    // Limits stay on (their cost is part of the path) but high enough never to refuse.
    RATE_LIMIT_GLOBAL_MAX: String(HUGE),
    RATE_LIMIT_OVERRIDES: JSON.stringify({ travel: HUGE, 'travel.searchFlights': HUGE }),
    ...env
  })
  const server = Fastify(serverOptions(config, false))
  await server.register(app, { config })
  await server.ready()
  return server
}

/**
 * The floor for an uncached call: a Fastify app whose route only forwards the request to the provider through
 * undici and answers the parsed result, with no auth, limits, validation, ledger, cache, metrics or tracing.
 */
async function minimalForwarder (pool: Pool, prompt: string): Promise<FastifyInstance> {
  const server = Fastify()
  server.post('/api/agents/travel/searchFlights', async request => {
    const input = request.body as Record<string, unknown>
    const res = await pool.request({
      path: '/v1/chat/completions',
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'bench-model',
        messages: [{ role: 'user', content: `${prompt}\n${JSON.stringify(input)}` }]
      })
    })
    const answer = await res.body.json() as { choices: Array<{ message: { content: string } }>, usage: unknown }
    return { success: true, data: JSON.parse(answer.choices[0].message.content), usage: answer.usage }
  })
  await server.ready()
  return server
}

/** A 0 ms OpenAI-compatible /v1/chat/completions answering FAKE_CONTENT; prints its port. */
const FAKE_PROVIDER = `
import http from 'node:http'
const body = JSON.stringify({
  id: 'chatcmpl-bench', object: 'chat.completion',
  choices: [{ index: 0, message: { role: 'assistant', content: process.env.FAKE_CONTENT }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 120, completion_tokens: 80 }
})
const server = http.createServer((req, res) => {
  req.resume()
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
    res.end(body)
  })
})
server.keepAliveTimeout = 60_000
server.listen(0, '127.0.0.1', () => process.stdout.write(server.address().port + '\\n'))
`

/**
 * One keep-alive connection sending requests back to back: WARMUP seconds, a "warm" line, SECONDS measured,
 * then a JSON line with the count and latency percentiles (ms, from performance.now()).
 */
const CLIENT = `
import { Pool } from 'undici'
const { TARGET, TARGET_PATH, HEADERS, BODY, SECONDS, WARMUP } = process.env
const pool = new Pool(TARGET, { connections: 1 })
const headers = JSON.parse(HEADERS)
async function pass (ms) {
  const latencies = []
  let bad = 0
  const end = performance.now() + ms
  while (performance.now() < end) {
    const started = performance.now()
    const res = await pool.request({ path: TARGET_PATH, method: 'POST', headers, body: BODY })
    await res.body.text()
    latencies.push(performance.now() - started)
    if (res.statusCode >= 300) bad++
  }
  return { latencies, bad }
}
await pass(Number(WARMUP) * 1000)
process.stdout.write('warm\\n')
const { latencies, bad } = await pass(Number(SECONDS) * 1000)
latencies.sort((a, b) => a - b)
const at = p => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))]
process.stdout.write(JSON.stringify({ count: latencies.length, p50: at(0.5), p99: at(0.99), bad }) + '\\n')
await pool.close()
`

/** Runs an ES module given as text in a child Node (resolving packages from the project); its stdout lines. */
function child (source: string, env: Record<string, string>) {
  const proc = spawn(process.execPath, ['--input-type=module', '-e', source], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  const lines = createInterface({ input: proc.stdout })[Symbol.asyncIterator]()
  const next = async () => {
    const line = await lines.next()
    if (line.done) throw new Error('the child process ended early')
    return line.value
  }
  const stop = async () => {
    if (proc.exitCode === null) {
      proc.kill()
      await once(proc, 'exit')
    }
  }
  return { next, stop }
}

interface CpuRow { scenario: string, callsPerSec: number, p50Ms: number, p99Ms: number, cpuUsPerCall: number }

const cpuMicros = (usage: NodeJS.CpuUsage) => usage.user + usage.system
const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits

/** Load from a client in a child process at one connection; CPU is this process's over the measured part. */
async function fromChild (
  scenario: string,
  target: string,
  path: string,
  headers: Record<string, string>,
  body: string,
  seconds: number
): Promise<CpuRow> {
  const client = child(CLIENT, {
    TARGET: target,
    TARGET_PATH: path,
    HEADERS: JSON.stringify(headers),
    BODY: body,
    SECONDS: String(seconds),
    WARMUP: String(WARMUP_SECONDS)
  })
  try {
    if ((await client.next()) !== 'warm') throw new Error('unexpected client output')
    const cpu = process.cpuUsage()
    const wall = performance.now()
    const result = JSON.parse(await client.next()) as { count: number, p50: number, p99: number, bad: number }
    const used = cpuMicros(process.cpuUsage(cpu))
    if (result.bad > 0) throw new Error(`${scenario}: ${result.bad} answers outside 2xx`)
    return {
      scenario,
      callsPerSec: result.count / ((performance.now() - wall) / 1000),
      p50Ms: result.p50,
      p99Ms: result.p99,
      cpuUsPerCall: used / result.count
    }
  } finally {
    await client.stop()
  }
}

/** Calls `once` back to back in this process (one at a time): latency and CPU per call. */
async function inProcess (scenario: string, call: () => Promise<unknown>, seconds: number): Promise<CpuRow> {
  const pass = async (ms: number) => {
    const latencies: number[] = []
    const end = performance.now() + ms
    while (performance.now() < end) {
      const started = performance.now()
      await call()
      latencies.push(performance.now() - started)
    }
    return latencies
  }
  await pass(1000)
  const cpu = process.cpuUsage()
  const wall = performance.now()
  const latencies = (await pass(seconds * 1000)).sort((a, b) => a - b)
  const used = cpuMicros(process.cpuUsage(cpu))
  const at = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))]
  return {
    scenario,
    callsPerSec: latencies.length / ((performance.now() - wall) / 1000),
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    cpuUsPerCall: used / latencies.length
  }
}

function cpuTable (rows: CpuRow[]): string {
  const [direct] = rows
  const header = ['scenario', 'calls/s', 'p50 ms', 'p99 ms', 'added p50 ms', 'added p99 ms', 'CPU µs/call', 'CPU ×']
  const lines = rows.map((row, i) => [
    row.scenario,
    String(Math.round(row.callsPerSec)),
    row.p50Ms.toFixed(3),
    row.p99Ms.toFixed(3),
    i === 0 ? '—' : (row.p50Ms - direct.p50Ms).toFixed(3),
    i === 0 ? '—' : (row.p99Ms - direct.p99Ms).toFixed(3),
    String(Math.round(row.cpuUsPerCall)),
    `${round(row.cpuUsPerCall / direct.cpuUsPerCall, 1)}×`
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map(l => l[i].length)))
  const format = (cells: string[]) =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ')} |`
  const rule = `|${widths.map((w, i) => '-'.repeat(w + 1) + (i === 0 ? '-' : ':')).join('|')}|`
  return [format(header), rule, ...lines.map(format)].join('\n')
}

/** A store and write mode the provider section runs the service on. */
interface Setup { store: 'PGlite' | 'PostgreSQL', mode: 'durable' | 'behind', env: Record<string, string> }

const ms = (value: number) => `${value.toFixed(2)} ms`

/** Acceptance 2 (uncached half), per store and write mode: added p50 ≤ 1 ms, added p99 ≤ 5 ms, CPU ≤ 0.5 ms. */
function targetsOf (direct: CpuRow, floor: CpuRow, measured: Array<{ setup: Setup, row: CpuRow }>): TargetRow[] {
  return measured.flatMap(({ setup, row }) => {
    const what = `uncached invoke, 0 ms provider, 1 connection, ${setup.store}, ` +
      `USAGE_WRITE_MODE=${setup.mode}${setup.mode === 'durable' ? ' (default)' : ''}`
    const addedP50 = row.p50Ms - direct.p50Ms
    const addedP99 = row.p99Ms - direct.p99Ms
    const cpuMs = row.cpuUsPerCall / 1000
    return [
      {
        what: `${what}: added p50`,
        measured: ms(addedP50),
        peer: `direct p50 ${ms(direct.p50Ms)}`,
        ratio: '—',
        target: '≤ 1 ms',
        met: addedP50 <= 1
      },
      {
        what: `${what}: added p99`,
        measured: ms(addedP99),
        peer: `direct p99 ${ms(direct.p99Ms)}`,
        ratio: '—',
        target: '≤ 5 ms',
        met: addedP99 <= 5
      },
      {
        what: `${what}: CPU per call`,
        measured: ms(cpuMs),
        peer: `minimal forwarder ${ms(floor.cpuUsPerCall / 1000)}; direct ${ms(direct.cpuUsPerCall / 1000)}`,
        ratio: `${round(row.cpuUsPerCall / floor.cpuUsPerCall, 1)}× the forwarder`,
        target: '≤ 0.5 ms',
        met: cpuMs <= 0.5
      }
    ]
  })
}

/**
 * Uncached invoke through a 0 ms fake OpenAI-compatible provider at one connection, on PGlite and on
 * PostgreSQL, in each usage-ledger write mode. The baseline is the provider called directly: its latency
 * from the same child client as the HTTP rows, its CPU per call from this process calling it (what any
 * caller pays).
 */
async function providerSection (
  request: GenerateRequest,
  seconds: number
): Promise<{ table: string, notes: string[], targets: TargetRow[] }> {
  const offline = await instance()
  const { text } = await offline.llm.provider.generate(request).finally(() => closeAll(offline))
  const fake = child(FAKE_PROVIDER, { FAKE_CONTENT: text })
  const redisUrl = process.env.BENCH_REDIS_URL
  let direct: Pool | null = null
  const scratch = await scratchDatabase(`amk_bench_invoke_${process.pid}`)
  try {
    const providerUrl = `http://127.0.0.1:${await fake.next()}`
    const pool = (direct = new Pool(providerUrl, { connections: 1 }))
    const json = { 'content-type': 'application/json' }
    const chat = JSON.stringify({ model: 'bench-model', messages: [{ role: 'user', content: request.prompt }] })
    const callDirect = async () => {
      const res = await pool.request({ path: '/v1/chat/completions', method: 'POST', headers: json, body: chat })
      return res.body.json()
    }
    const directLatency = await fromChild('direct', providerUrl, '/v1/chat/completions', json, chat, seconds)
    const directCpu = await inProcess('direct', callDirect, seconds)
    const baseline = {
      ...directLatency,
      scenario: 'direct provider call (baseline; CPU: this process calling it)',
      cpuUsPerCall: directCpu.cpuUsPerCall
    }
    const setups = (['durable', 'behind'] as const).flatMap((mode): Setup[] => [
      { store: 'PGlite', mode, env: { USAGE_WRITE_MODE: mode } },
      ...(scratch
        ? [{ store: 'PostgreSQL' as const, mode, env: { USAGE_WRITE_MODE: mode, DATABASE_URL: scratch.url } }]
        : [])
    ])
    const forwarder = await minimalForwarder(pool, request.prompt)
    const floor = await fromChild(
      'minimal forwarder: Fastify route → undici → provider, parsed answer (CPU: the server)',
      await forwarder.listen({ port: 0, host: '127.0.0.1' }),
      '/api/agents/travel/searchFlights',
      json,
      JSON.stringify(INPUT),
      seconds
    ).finally(() => closeAll(forwarder))
    const rows: CpuRow[] = [baseline, floor]
    const measured: Array<{ setup: Setup, row: CpuRow }> = []
    for (const setup of setups) {
      let server: FastifyInstance | null = null
      // PGlite as `npm start` runs it: in a data directory (its files, and the usage journal of 'durable').
      const dataDir = setup.store === 'PGlite' ? mkdtempSync(join(tmpdir(), 'amk-bench-invoke-')) : undefined
      try {
        const app = (server = await instance({
          LLM_PROVIDER: 'openai',
          OPENAI_BASE_URL: `${providerUrl}/v1`,
          OPENAI_MODEL: 'bench-model',
          ...(dataDir ? { DATA_DIR: dataDir } : {}),
          ...setup.env,
          ...(redisUrl ? { REDIS_URL: redisUrl, REDIS_KEY_PREFIX: `amkbench:${process.pid}:` } : {})
        }))
        if (measured.length === 0) {
          rows.push(await inProcess('provider.generate(), openai-compatible client', () =>
            app.llm.provider.generate({ ...request, model: 'bench-model' }), seconds))
        }
        const row = await fromChild(
          `POST /api/agents/travel/searchFlights, no-cache: ${setup.store}, USAGE_WRITE_MODE=${setup.mode} ` +
            '(CPU: the server)',
          await app.listen({ port: 0, host: '127.0.0.1' }),
          '/api/agents/travel/searchFlights',
          { ...json, 'x-api-key': KEY, 'cache-control': 'no-cache' },
          JSON.stringify(INPUT),
          seconds
        )
        rows.push(row)
        measured.push({ setup, row })
      } finally {
        await closeAll(server)
        if (dataDir) rmSync(dataDir, { recursive: true, force: true })
      }
    }
    return {
      table: cpuTable(rows),
      notes: [
        `Provider rows: one connection, calls back to back after ${WARMUP_SECONDS} s of the same calls ` +
          '(BENCH_INVOKE_WARMUP); the fake provider and the HTTP client run in child ' +
          'processes, so CPU per call is this process\'s own (process.cpuUsage() over the measured calls; ' +
          'PGlite runs in it, on a thread of its own in a new data directory per row as `npm start` runs it, and its ' +
          'CPU counts; PostgreSQL\'s own CPU is not counted). Added latency is over the direct call. ' +
          `${redisUrl ? `Redis at ${redisUrl}.` : 'No Redis (memory stores).'} ` +
          (scratch
            ? 'PostgreSQL: a scratch database on BENCH_POSTGRES_URL\'s server.'
            : 'PostgreSQL not reachable: its rows were skipped.')
      ],
      targets: targetsOf(baseline, floor, measured)
    }
  } finally {
    await direct?.close()
    await fake.stop()
    await scratch?.drop()
  }
}

export async function run (): Promise<{ title: string, table: string, notes: string[], targets: TargetRow[] }> {
  const { duration, connections } = settings()
  const server = await instance()
  let rows: BenchRow[]
  let ledgerRows: number
  let request: GenerateRequest
  try {
    const method = server.agents.definitions.travel.methods.searchFlights
    const { system, prompt } = method.prompt({ ...INPUT, class: 'economy' })
    request = {
      model: 'offline',
      system,
      prompt,
      responseSchema: method.output,
      task: { agent: 'travel', method: 'searchFlights', input: { ...INPUT, class: 'economy' } }
    }
    const offlineRequest = request
    const http = { path: '/api/agents/travel/searchFlights', method: 'POST' as const, body: JSON.stringify(INPUT) }
    rows = withRatios([
      {
        scenario: 'offline provider.generate() in-process (baseline)',
        ...(await loadInProcess(() => server.llm.provider.generate(offlineRequest), duration, connections))
      },
      {
        scenario: 'agents.invoke() in-process, cache off (validation, ledger, metrics)',
        ...(await loadInProcess(
          () =>
            server.agents.invoke({
              agent: 'travel',
              method: 'searchFlights',
              input: INPUT,
              caller: CALLER,
              noCache: true
            }),
          duration,
          connections
        ))
      },
      {
        scenario: 'POST /api/agents/travel/searchFlights, Cache-Control: no-cache',
        ...(await measure(server, {
          ...http,
          headers: { 'content-type': 'application/json', 'x-api-key': KEY, 'cache-control': 'no-cache' }
        }))
      },
      {
        scenario: 'POST /api/agents/travel/searchFlights, cache hits (memory)',
        ...(await measure(server, { ...http, headers: { 'content-type': 'application/json', 'x-api-key': KEY } }))
      }
    ])
    ledgerRows = (await server.db.query<{ n: number }>('SELECT count(*)::int AS n FROM usage_ledger'))[0].n
  } finally {
    await closeAll(server)
  }
  const provider = await providerSection(request, duration)
  return {
    title: 'Agent invoke overhead (travel.searchFlights): offline provider, then a 0 ms OpenAI-compatible one',
    table: `${formatTable(rows)}\n\n${provider.table}`,
    notes: [
      'The offline provider answers instantly, so the ratios are the whole cost of the service and HTTP layers; ' +
        'with a real model (hundreds of ms to seconds per call) this overhead is negligible. ' +
        `${ledgerRows} usage-ledger rows were written (PGlite in memory), one per uncached call.`,
      'Load generators share the process (and, here, the machine) with the server: ' +
        'compare ratios, not absolute numbers, across machines.',
      ...provider.notes
    ],
    targets: provider.targets
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const result = await run()
  process.stdout.write(`\n## ${result.title}\n\n${result.table}\n${result.notes.map(n => `\n${n}\n`).join('')}`)
  process.exit(0)
}

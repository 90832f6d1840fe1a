// Cold start and memory at rest (issue 16, acceptance 5). Each configuration runs as a real server process
// and is timed from spawn until GET /api/health/ready answers 200 (median of BENCH_STARTUP_RUNS starts, 3 by
// default, in rotating order); its RSS (/proc/PID/status) is read 2 s after ready (idle), and then sampled
// under the request-path load — GET /api/agents/list with an API key and the Redis limiter, autocannon in
// this process for BENCH_STARTUP_LOAD_SECONDS (10 by default) — keeping the peak. The configurations:
//   - bare Fastify (plain node): the same route replying with the app's bytes, plus a ready route;
//   - the app on PostgreSQL (BENCH_DATABASE_URL, default a database of its own, amk_bench_startup, created on
//     postgres://postgres@127.0.0.1:5432: test suites running at the same time truncate the shared `test`);
//   - the app on the embedded PGlite: a first start on an empty DATA_DIR (with the pre-initialised data
//     directory snapshot cached as after any earlier start, and once more with no snapshot, as on a machine
//     that never started the app) and a restart on a DATA_DIR that holds a database;
// each as `npm start` runs it (package.json's start script) and, when a build exists, as `node dist/server.js`.
// Run alone: `node --import=tsx bench/startup.ts`; STARTUP_CONFIGS=pg-start,pglite-restart-start picks rows.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'
import { freePort, serverEnv, settings, type TargetRow } from './lib.js'

const ROOT = fileURLToPath(new URL('../', import.meta.url))
const KEY = 'amk_bench_startup_user_key_0123456789abcdef'
const LIST_PATH = '/api/agents/list'
const READY_PATH = '/api/health/ready'
const HUGE = 1_000_000_000
const MB = 1024 * 1024

interface Config {
  id: string
  label: string
  /** node arguments (the entry and its flags). */
  args: string[]
  env: Record<string, string>
  /** A fresh DATA_DIR per start (first start), or one kept across starts (restart). */
  dataDir?: 'fresh' | 'kept'
}

interface Start { readyMs: number, cpuToReadyMs: number, idleRss: number }
interface Load { peakRss: number, requestsPerSec: number, bad: number, total: number }

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]
const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))

/** package.json's start script as node arguments ("node --import=tsx src/server.ts" → ["--import=tsx", …]). */
function npmStartArgs (): string[] {
  const script: string = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts.start
  const [command, ...args] = script.split(/\s+/)
  if (command !== 'node') throw new Error(`npm start is not a node command: ${script}`)
  return args
}

// The bare peer: plain node and Fastify, the app's exact list bytes, and a ready route.
const BARE = `
import Fastify from 'fastify'
const body = process.env.BARE_BODY
const app = Fastify()
app.get('${LIST_PATH}', (_req, reply) => { reply.type('application/json; charset=utf-8').send(body) })
app.get('${READY_PATH}', async () => ({ status: 'ready' }))
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' })
`

const SERVER = 'postgres://postgres@127.0.0.1:5432'
const OWN_DATABASE = 'amk_bench_startup'

/** BENCH_DATABASE_URL, or a database of this benchmark's own (created when missing). */
async function databaseUrl (): Promise<string> {
  if (process.env.BENCH_DATABASE_URL) return process.env.BENCH_DATABASE_URL
  const { default: pg } = await import('pg')
  const client = new pg.Client({ connectionString: `${SERVER}/postgres` })
  await client.connect()
  try {
    await client.query(`CREATE DATABASE ${OWN_DATABASE}`)
  } catch (error) {
    if (Reflect.get(Object(error), 'code') !== '42P04') throw error // 42P04: it exists already
  } finally {
    await client.end()
  }
  return `${SERVER}/${OWN_DATABASE}`
}

function configs (databaseUrl: string): Config[] {
  const start = npmStartArgs()
  const built = existsSync(join(ROOT, 'dist/server.js'))
  const entries: Array<{ how: string, args: string[] }> = [{ how: 'npm start', args: start }]
  if (built) entries.push({ how: 'node dist/server.js', args: ['dist/server.js'] })
  const all: Config[] = [
    { id: 'bare', label: 'bare Fastify (node, same bytes)', args: ['--input-type=module', '-e', BARE], env: {} }
  ]
  for (const { how, args } of entries) {
    const suffix = how === 'npm start' ? 'start' : 'dist'
    all.push(
      { id: `pg-${suffix}`, label: `PostgreSQL, ${how}`, args, env: { DATABASE_URL: databaseUrl } },
      {
        id: `pglite-first-${suffix}`,
        label: `PGlite first start (empty DATA_DIR), ${how}`,
        args,
        env: {},
        dataDir: 'fresh'
      },
      { id: `pglite-restart-${suffix}`, label: `PGlite restart, ${how}`, args, env: {}, dataDir: 'kept' }
    )
    if (suffix === 'start') {
      all.push({
        id: 'pglite-cold-start',
        label: `PGlite first start, no snapshot cached (first ever), ${how}`,
        args,
        env: { PGLITE_SNAPSHOT_DIR: '' },
        dataDir: 'fresh'
      })
    }
  }
  const chosen = (process.env.STARTUP_CONFIGS ?? '').split(',').map(s => s.trim()).filter(Boolean)
  return chosen.length > 0 ? all.filter(c => c.id === 'bare' || chosen.includes(c.id)) : all
}

function rssOf (pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return match ? Number(match[1]) * 1024 : NaN
}

/** utime + stime of a process, in ms. */
function cpuMsOf (pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ')
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100
}

interface Running { child: ChildProcess, port: number, readyMs: number, cpuToReadyMs: number, stop(): Promise<void> }

async function launch (config: Config, dataDir: string, extraEnv: Record<string, string>): Promise<Running> {
  const port = await freePort()
  const started = performance.now()
  const child = spawn(process.execPath, config.args, {
    cwd: ROOT,
    env: serverEnv(port, {
      LOG_LEVEL: 'warn',
      DATA_DIR: dataDir,
      VALID_API_KEYS: `${KEY}:user`,
      RATE_LIMIT_GLOBAL_MAX: String(HUGE),
      REDIS_URL: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379',
      REDIS_KEY_PREFIX: 'amkbench-startup:',
      ...config.env,
      ...extraEnv
    }),
    stdio: ['ignore', 'ignore', 'pipe']
  })
  let errors = ''
  child.stderr?.on('data', (chunk: Buffer) => { errors = (errors + chunk.toString()).slice(-4000) })
  const url = `http://127.0.0.1:${port}${READY_PATH}`
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${config.label} exited (${child.exitCode}):\n${errors}`)
    if (performance.now() - started > 180_000) {
      child.kill('SIGKILL')
      throw new Error(`${config.label} was not ready in 180 s:\n${errors}`)
    }
    const ok = await fetch(url, { signal: AbortSignal.timeout(1000) }).then(res => res.status === 200, () => false)
    if (ok) break
    await sleep(20)
  }
  const readyMs = performance.now() - started
  const cpuToReadyMs = cpuMsOf(child.pid!)
  return {
    child,
    port,
    readyMs,
    cpuToReadyMs,
    async stop () {
      if (child.exitCode !== null) return
      const exited = once(child, 'exit')
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
      await exited
      clearTimeout(timer)
    }
  }
}

async function underLoad (server: Running, seconds: number, connections: number): Promise<Load> {
  const pid = server.child.pid!
  let peakRss = rssOf(pid)
  const sampler = setInterval(() => { peakRss = Math.max(peakRss, rssOf(pid)) }, 100)
  try {
    const result = await autocannon({
      url: `http://127.0.0.1:${server.port}${LIST_PATH}`,
      headers: { 'x-api-key': KEY },
      connections,
      duration: seconds
    })
    peakRss = Math.max(peakRss, rssOf(pid))
    const bad = result.non2xx + result.errors + result.timeouts
    return { peakRss, requestsPerSec: result.requests.average, bad, total: result.requests.total }
  } finally {
    clearInterval(sampler)
  }
}

const mb = (bytes: number) => `${Math.round(bytes / MB)} MB`
const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`
const ratio = (a: number, b: number) => `${(a / b).toFixed(1)}×`

export async function run (): Promise<{ title: string, table: string, notes: string[], targets: TargetRow[] }> {
  const runs = Math.max(1, Number(process.env.BENCH_STARTUP_RUNS ?? 3))
  const loadSeconds = Number(process.env.BENCH_STARTUP_LOAD_SECONDS ?? 10)
  const { connections } = settings()
  const all = configs(await databaseUrl())
  const scratch = await mkdtemp(join(tmpdir(), 'amk-startup-'))
  const kept = join(scratch, 'kept')
  // "No snapshot" starts point the snapshot cache at an empty directory of their own.
  const emptyCache = join(scratch, 'no-snapshot')
  const starts = new Map<string, Start[]>(all.map(c => [c.id, []]))
  const loads = new Map<string, Load>()
  let listBody = ''
  try {
    // The list bytes for the bare peer, and the kept DATA_DIR's database (an unmeasured first start).
    // PostgreSQL's migrations run in an unmeasured start too.
    const seeds = [all.find(c => c.dataDir === 'kept'), all.find(c => c.id.startsWith('pg-'))]
    for (const config of seeds.filter(c => c !== undefined)) {
      const seed = await launch(config, kept, {})
      const response = await fetch(`http://127.0.0.1:${seed.port}${LIST_PATH}`, { headers: { 'x-api-key': KEY } })
      listBody = await response.text()
      await seed.stop()
      if (response.status !== 200) throw new Error(`${LIST_PATH} answered ${response.status}: ${listBody}`)
    }

    for (let round = 0; round < runs; round++) {
      const order = all.map((_, i) => all[(i + round) % all.length])
      for (const config of order) {
        const dataDir = config.dataDir === 'kept' ? kept : join(scratch, `fresh-${config.id}-${round}`)
        const extra: Record<string, string> = { BARE_BODY: listBody }
        if (config.env.PGLITE_SNAPSHOT_DIR === '') extra.PGLITE_SNAPSHOT_DIR = join(emptyCache, String(round))
        const server = await launch(config, config.dataDir ? dataDir : 'memory://', extra)
        try {
          await sleep(2000)
          starts.get(config.id)!.push({
            readyMs: server.readyMs,
            cpuToReadyMs: server.cpuToReadyMs,
            idleRss: rssOf(server.child.pid!)
          })
          if (round === runs - 1 && loadSeconds > 0) {
            loads.set(config.id, await underLoad(server, loadSeconds, connections))
          }
        } finally {
          await server.stop()
        }
        if (config.dataDir === 'fresh') await rm(dataDir, { recursive: true, force: true })
      }
    }
  } finally {
    await rm(scratch, { recursive: true, force: true })
  }

  const figure = (id: string) => {
    const samples = starts.get(id)!
    return {
      readyMs: median(samples.map(s => s.readyMs)),
      cpuMs: median(samples.map(s => s.cpuToReadyMs)),
      idleRss: median(samples.map(s => s.idleRss)),
      load: loads.get(id)
    }
  }
  const bare = figure('bare')
  const header = ['configuration', 'start → ready', 'CPU to ready', 'vs bare', 'idle RSS', 'vs bare',
    'RSS under load (peak)', 'vs bare', 'req/s under load']
  const lines = all.map(config => {
    const f = figure(config.id)
    return [
      config.label, secs(f.readyMs), secs(f.cpuMs), ratio(f.readyMs, bare.readyMs), mb(f.idleRss),
      ratio(f.idleRss, bare.idleRss), f.load ? mb(f.load.peakRss) : '—',
      f.load && bare.load ? ratio(f.load.peakRss, bare.load.peakRss) : '—',
      f.load ? `${Math.round(f.load.requestsPerSec)}${f.load.bad ? ` (${f.load.bad} bad)` : ''}` : '—'
    ]
  })
  const table = [header, header.map(() => '---'), ...lines].map(cells => `| ${cells.join(' | ')} |`).join('\n')

  const targets: TargetRow[] = []
  const has = (id: string) => all.some(c => c.id === id)
  const pglite = [
    'pglite-first-start', 'pglite-restart-start', 'pglite-cold-start', 'pglite-first-dist', 'pglite-restart-dist'
  ]
  for (const id of pglite) {
    if (!has(id)) continue
    const f = figure(id)
    targets.push({
      what: `${all.find(c => c.id === id)!.label}: start to ready`,
      measured: secs(f.readyMs),
      peer: `bare Fastify ${secs(bare.readyMs)}`,
      ratio: ratio(f.readyMs, bare.readyMs),
      target: id === 'pglite-cold-start' ? '— (first ever start: initdb)' : '≤ 3 s',
      met: id === 'pglite-cold-start' ? true : f.readyMs <= 3000
    })
  }
  for (const id of ['pg-start', 'pg-dist']) {
    if (!has(id)) continue
    const f = figure(id)
    const rss = f.load?.peakRss ?? NaN
    targets.push({
      what: `${all.find(c => c.id === id)!.label}: RSS under the request-path load`,
      measured: mb(rss),
      peer: bare.load ? `bare Fastify ${mb(bare.load.peakRss)}` : '—',
      ratio: bare.load ? ratio(rss, bare.load.peakRss) : '—',
      target: '< 250 MB (all answered 2xx)',
      // A load answered with errors (e.g. 401s) is not the request path: it does not count.
      met: rss < 250 * MB && (f.load?.bad ?? 1) <= (f.load?.total ?? 0) / 100
    })
    targets.push({
      what: `${all.find(c => c.id === id)!.label}: start to ready, idle RSS`,
      measured: `${secs(f.readyMs)}, ${mb(f.idleRss)}`,
      peer: `bare Fastify ${secs(bare.readyMs)}, ${mb(bare.idleRss)}`,
      ratio: `${ratio(f.readyMs, bare.readyMs)}, ${ratio(f.idleRss, bare.idleRss)}`,
      target: '— (printed next to bare)',
      met: true
    })
  }
  for (const id of ['pglite-restart-start', 'pglite-restart-dist']) {
    if (!has(id)) continue
    const f = figure(id)
    targets.push({
      what: `${all.find(c => c.id === id)!.label}: idle RSS, RSS under load`,
      measured: `${mb(f.idleRss)}, ${f.load ? mb(f.load.peakRss) : '—'}`,
      peer: `bare Fastify ${mb(bare.idleRss)}, ${bare.load ? mb(bare.load.peakRss) : '—'}`,
      ratio: `${ratio(f.idleRss, bare.idleRss)}, ` +
        `${f.load && bare.load ? ratio(f.load.peakRss, bare.load.peakRss) : '—'}`,
      target: '— (the README states the cost)',
      met: true
    })
  }
  return {
    title: 'Cold start and memory at rest',
    table,
    notes: [
      `Median of ${runs} starts per configuration (rotating order); start → ready is spawn until ${READY_PATH} ` +
      'answers 200; CPU to ready is the process\'s utime + stime at that moment; idle RSS is 2 s after ready; ' +
      `RSS under load is the peak during ${loadSeconds} s of autocannon (${connections} connections) on ` +
      `GET ${LIST_PATH} with an API key and the Redis limiter. Node ${process.version}.`
    ],
    targets
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const result = await run()
  process.stdout.write(`## ${result.title}\n\n${result.table}\n\n${result.notes.join('\n')}\n\n`)
  for (const row of result.targets) {
    process.stdout.write(`${row.met ? 'met' : 'NOT met'}: ${row.what} ${row.measured} (${row.target})\n`)
  }
  process.exit(0)
}

// The request path (issue 16): GET /api/agents/list with an API key and the Redis limiter through the full
// app (auth, rate limit, metrics, helmet, error handler…), next to two peers sending the same bytes:
//   - bare Fastify: one route replying with the full app's body, nothing else;
//   - a minimal equivalent: a Fastify app that does what the route must — API-key auth by looking up the
//     key's SHA-256 in a Map, one Redis round trip for the rate limit (INCR and expiry in one script), and
//     the same reply (serialised per request).
// Each server runs in a child process, which reports its own process.cpuUsage() over IPC, so the CPU per
// request is the server's alone (autocannon runs in this process). The contenders are measured in
// alternating rounds (the order rotates each round); each figure is the median of its rounds.
// Run alone: `node --import=tsx bench/request-path.ts` (BENCH_DURATION, BENCH_CONNECTIONS, BENCH_ROUNDS —
// default 3 here —, BENCH_REDIS_URL to override redis://127.0.0.1:6379, BENCH_DATABASE_URL for PostgreSQL
// instead of an in-memory PGlite).
import { fork, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { randomBytes } from 'node:crypto'
import { fileURLToPath, pathToFileURL } from 'node:url'
import autocannon from 'autocannon'
import { settings } from './lib.js'

const KEY = 'amk_bench_request_path_user_key_0123456789'
const PATH = '/api/agents/list'
const SELF = fileURLToPath(import.meta.url)
const SERVER_FLAG = '--request-path-server'

type Kind = 'app' | 'bare' | 'minimal'
interface Cpu { user: number, system: number }
interface Sample { requestsPerSec: number, cpuUsPerRequest: number, p50Ms: number, p99Ms: number, bad: number }

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]

interface Child { kind: Kind, port: number, child: ChildProcess, cpu: () => Promise<Cpu> }

async function startChild (kind: Kind, env: Record<string, string>): Promise<Child> {
  const child = fork(SELF, [SERVER_FLAG, kind], {
    execArgv: ['--import=tsx'],
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  })
  const [message] = (await Promise.race([
    once(child, 'message'),
    once(child, 'exit').then(([code]) => { throw new Error(`the ${kind} server exited (${code}) before listening`) })
  ])) as [{ port: number }]
  const cpu = async () => {
    child.send('cpu')
    const [reply] = (await once(child, 'message')) as [Cpu]
    return reply
  }
  return { kind, port: message.port, child, cpu }
}

async function load (port: number, duration: number, connections: number) {
  return autocannon({
    url: `http://127.0.0.1:${port}${PATH}`,
    headers: { 'x-api-key': KEY },
    connections,
    duration
  })
}

/** One measured pass: autocannon for `duration` s, the server's CPU over exactly that time. */
async function sample (server: Child, duration: number, connections: number): Promise<Sample> {
  const before = await server.cpu()
  const result = await load(server.port, duration, connections)
  const after = await server.cpu()
  const cpuUs = after.user - before.user + after.system - before.system
  const answered = result['2xx']
  return {
    requestsPerSec: result.requests.average,
    cpuUsPerRequest: answered > 0 ? cpuUs / answered : NaN,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    bad: result.non2xx + result.errors + result.timeouts
  }
}

const LABELS: Record<Kind, string> = {
  app: 'full app: API key + Redis limiter, metrics, helmet',
  minimal: 'minimal equivalent: hashed-key Map, 1 Redis call, same reply',
  bare: 'bare Fastify, same bytes'
}

export async function run (): Promise<{ title: string, table: string, notes: string[] }> {
  const { duration, connections } = settings()
  const rounds = process.env.BENCH_ROUNDS ? settings().rounds : 3
  const redisUrl = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379'
  const env = {
    REQUEST_PATH_REDIS_URL: redisUrl,
    REQUEST_PATH_PREFIX: `amkbench:${randomBytes(3).toString('hex')}:`
  }
  const children: Child[] = []
  try {
    const app = await startChild('app', env)
    children.push(app)
    const reference = await fetch(`http://127.0.0.1:${app.port}${PATH}`, { headers: { 'x-api-key': KEY } })
    const body = await reference.text()
    if (reference.status !== 200) throw new Error(`the full app answered ${reference.status}: ${body}`)
    const peerEnv = { ...env, REQUEST_PATH_BODY: body }
    children.push(await startChild('minimal', peerEnv), await startChild('bare', peerEnv))
    // Unmeasured: warm every server's JIT.
    for (const server of children) await load(server.port, 2, connections)
    const samples = new Map<Kind, Sample[]>(children.map(c => [c.kind, []]))
    for (let round = 0; round < rounds; round++) {
      for (let i = 0; i < children.length; i++) {
        const server = children[(i + round) % children.length]
        samples.get(server.kind)!.push(await sample(server, duration, connections))
      }
    }
    const figure = (kind: Kind, field: keyof Sample) => median(samples.get(kind)!.map(s => s[field]))
    const cpu = (kind: Kind) => figure(kind, 'cpuUsPerRequest')
    const rps = (kind: Kind) => figure(kind, 'requestsPerSec')
    const kinds: Kind[] = ['app', 'minimal', 'bare']
    const header = ['server', 'req/s', 'CPU µs/req', 'p50 ms', 'p99 ms', 'non-2xx', 'CPU vs minimal', 'CPU vs bare',
      'req/s vs bare']
    const lines = kinds.map(kind => [
      LABELS[kind],
      String(Math.round(rps(kind))),
      cpu(kind).toFixed(1),
      String(figure(kind, 'p50Ms')),
      String(figure(kind, 'p99Ms')),
      String(samples.get(kind)!.reduce((sum, s) => sum + s.bad, 0)),
      `${(cpu(kind) / cpu('minimal')).toFixed(2)}×`,
      `${(cpu(kind) / cpu('bare')).toFixed(2)}×`,
      `${(rps(kind) / rps('bare')).toFixed(2)}×`
    ])
    const widths = header.map((h, i) => Math.max(h.length, ...lines.map(l => l[i].length)))
    const format = (cells: string[]) =>
      `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ')} |`
    const rule = `|${widths.map((w, i) => '-'.repeat(w + 1) + (i === 0 ? '-' : ':')).join('|')}|`
    return {
      title: 'Request path: GET /api/agents/list, API key + Redis limiter, vs the minimal equivalent and bare Fastify',
      table: [format(header), rule, ...lines.map(format)].join('\n'),
      notes: [
        `${rounds} alternating rounds of ${duration} s at ${connections} connections; medians. CPU per request is ` +
          "the server process's own process.cpuUsage() over a round divided by its 2xx responses (the load " +
          'generator runs in another process).',
        `Every server answers the same ${Buffer.byteLength(body)}-byte body. Acceptance (issue 16): CPU ≤ 1.5× the ` +
          'minimal equivalent, req/s ≥ 0.5× bare Fastify.'
      ]
    }
  } finally {
    for (const { child } of children) child.kill()
  }
}

/** The server side, in a child process: listens on a free port, reports it, then answers 'cpu' messages. */
async function serve (kind: Kind): Promise<void> {
  const { default: Fastify } = await import('fastify')
  const redisUrl = process.env.REQUEST_PATH_REDIS_URL ?? 'redis://127.0.0.1:6379'
  const prefix = process.env.REQUEST_PATH_PREFIX ?? 'amkbench:'
  const body = process.env.REQUEST_PATH_BODY ?? ''
  let server
  if (kind === 'app') {
    const { default: app, serverOptions } = await import('../src/app.js')
    const { loadConfig } = await import('../src/config.js')
    const { openDatabase } = await import('../src/store/database.js')
    const config = loadConfig({
      NODE_ENV: 'test',
      LOG_LEVEL: 'silent',
      DATA_DIR: 'memory://',
      ...(process.env.BENCH_DATABASE_URL ? { DATABASE_URL: process.env.BENCH_DATABASE_URL } : {}),
      VALID_API_KEYS: `${KEY}:user`,
      RATE_LIMIT_GLOBAL_MAX: '1000000000',
      REDIS_URL: redisUrl,
      REDIS_KEY_PREFIX: prefix
    })
    const db = await openDatabase({ dataDir: 'memory://', databaseUrl: process.env.BENCH_DATABASE_URL })
    server = Fastify(serverOptions(config, false))
    await server.register(app, { config, db })
  } else if (kind === 'bare') {
    server = Fastify()
    server.get(PATH, (_request, reply) => { reply.type('application/json; charset=utf-8').send(body) })
  } else {
    const { createHash } = await import('node:crypto')
    const { Redis } = await import('ioredis')
    const redis = new Redis(redisUrl, { enableOfflineQueue: false, maxRetriesPerRequest: 1 })
    await once(redis, 'ready')
    redis.defineCommand('hit', {
      numberOfKeys: 1,
      lua: `local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n`
    })
    const hit = (redis as unknown as { hit(key: string, windowMs: number): Promise<number> }).hit.bind(redis)
    const keys = new Map([[createHash('sha256').update(KEY).digest('hex'), { id: 'bench', role: 'user' }]])
    const list: unknown = JSON.parse(body)
    server = Fastify()
    server.get(PATH, async (request, reply) => {
      const key = request.headers['x-api-key']
      const caller = typeof key === 'string' ? keys.get(createHash('sha256').update(key).digest('hex')) : undefined
      if (!caller) return reply.code(401).send({ code: 'AMK_UNAUTHORIZED' })
      const count = await hit(`${prefix}min:global:c:${caller.id}`, 60_000)
      if (count > 1_000_000_000) return reply.code(429).send({ code: 'AMK_RATE_LIMITED' })
      return list
    })
  }
  await server.listen({ port: 0, host: '127.0.0.1' })
  const address = server.server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  process.on('message', (message) => {
    if (message === 'cpu') process.send?.(process.cpuUsage())
  })
  process.on('disconnect', () => process.exit(0))
  process.send?.({ port })
}

if (process.argv.includes(SERVER_FLAG)) {
  await serve(process.argv[process.argv.indexOf(SERVER_FLAG) + 1] as Kind)
} else if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { title, table, notes } = await run()
  process.stdout.write(`\n## ${title}\n\n${table}\n${notes.map(note => `\n${note}\n`).join('')}`)
  process.exit(0)
}

// Coordinator overhead, in one run: ten agent methods called directly with Promise.all (the baseline)
// vs the same ten as one parallel workflow through the coordinator (plan checks, the run stored,
// coalesced progress writes, the outcome), on PGlite and — when reachable — on PostgreSQL, each against
// the baseline on the same database; plus the PGlite workflow over HTTP (auth, rate limits, JSON).
// Offline provider, response cache bypassed (noCache) on every row, so each row makes the same ten
// provider calls. Rows are workflows per second (each = ten calls).
// Run alone: `node --import=tsx bench/coordinator.ts` (BENCH_DURATION=s, BENCH_WORKFLOW_CONCURRENCY=n,
// BENCH_POSTGRES_URL to override postgres://postgres@127.0.0.1:5432/postgres).
import Fastify, { type FastifyInstance } from 'fastify'
import net from 'node:net'
import { pathToFileURL } from 'node:url'
import pg from 'pg'
import app, { serverOptions } from '../src/app.js'
import type { Caller } from '../src/auth/roles.js'
import type { AgentName } from '../src/agents/types.js'
import { loadConfig } from '../src/config.js'
import type { StepSpec } from '../src/coordinator/types.js'
import { openDatabase, type Database } from '../src/store/database.js'
import {
  closeAll,
  loadInProcess,
  measure,
  printTable,
  settings,
  withRatios,
  type BenchResult,
  type BenchRow
} from './lib.js'

const KEY = 'amk_bench_coordinator_user_key_01'
const CALLER: Caller = { id: 'bench-coordinator', kind: 'api-key', role: 'user' }

export const TASKS: StepSpec[] = [
  { agent: 'travel', method: 'searchFlights', input: { from: 'Cairo', to: 'Paris', date: '2030-05-01' } },
  {
    agent: 'travel',
    method: 'searchHotels',
    input: { destination: 'Lisbon', checkin: '2030-06-01', checkout: '2030-06-04' }
  },
  { agent: 'travel', method: 'generateItinerary', input: { destination: 'Kyoto', duration: 3 } },
  {
    agent: 'travel',
    method: 'getDestinationRecommendations',
    input: { budget: 3000, interests: ['food'], duration: 7, season: 'spring' }
  },
  { agent: 'travel', method: 'getVisaRequirements', input: { destination: 'Japan', nationality: 'Egyptian' } },
  { agent: 'content', method: 'generateBlogPost', input: { topic: 'Budget travel in Vietnam' } },
  { agent: 'content', method: 'generateSocialPosts', input: { topic: 'Our new Nile cruise', count: 3 } },
  { agent: 'content', method: 'researchTopic', input: { topic: 'Sustainable tourism', depth: 'quick' } },
  { agent: 'innovation', method: 'generateIdeas', input: { industry: 'travel', count: 3 } },
  {
    agent: 'innovation',
    method: 'validateIdea',
    input: { idea: 'Subscription boxes of Egyptian spices', targetMarket: 'home cooks' }
  }
]

async function reachable (url: string): Promise<boolean> {
  const { hostname, port } = new URL(url)
  return new Promise(resolve => {
    const socket = net.connect({ host: hostname, port: Number(port || 5432) }, () => { socket.end(); resolve(true) })
    socket.setTimeout(500, () => { socket.destroy(); resolve(false) })
    socket.on('error', () => resolve(false))
  })
}

async function instance (db: Database | undefined, databaseUrl?: string): Promise<FastifyInstance> {
  const config = loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    DATA_DIR: 'memory://',
    VALID_API_KEYS: `${KEY}:user`,
    RATE_LIMIT_GLOBAL_MAX: '100000000',
    RATE_LIMIT_OVERRIDES: JSON.stringify({ coordinator: 100_000_000 }),
    ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {})
  })
  const server = Fastify(serverOptions(config, false))
  await server.register(app, { config, db })
  await server.ready()
  return server
}

const direct = (server: FastifyInstance) => async () => {
  await Promise.all(
    TASKS.map(task =>
      server.agents.invoke({
        agent: task.agent as AgentName,
        method: task.method,
        input: task.input!,
        caller: CALLER,
        noCache: true
      })
    )
  )
}

const workflow = (server: FastifyInstance) => async () => {
  const handle = await server.coordinator.start({
    caller: CALLER,
    kind: 'parallel',
    body: { tasks: TASKS },
    spec: { strategy: 'parallel', tasks: TASKS },
    noCache: true
  })
  const run = await handle.done
  if (!run.success) throw new Error(`workflow ${run.status}`)
}

export async function run (): Promise<BenchResult> {
  const { duration } = settings()
  const concurrency = Number(process.env.BENCH_WORKFLOW_CONCURRENCY ?? 10)
  const postgresAdmin = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
  const withPostgres = await reachable(postgresAdmin)
  const rows: BenchRow[] = []
  const db = await openDatabase({ dataDir: 'memory://' })
  const pglite = await instance(db)
  let postgres: FastifyInstance | null = null
  const database = `amk_bench_${process.pid}`
  try {
    const local = [
      {
        scenario: 'PGlite: ten agents.invoke calls, Promise.all (baseline)',
        ...(await loadInProcess(direct(pglite), duration, concurrency))
      },
      {
        scenario: 'PGlite: the ten as one parallel workflow (coordinator)',
        ...(await loadInProcess(workflow(pglite), duration, concurrency))
      },
      {
        scenario: 'PGlite: the same workflow over HTTP (POST /api/coordinator/parallel)',
        ...(await measure(pglite, {
          path: '/api/coordinator/parallel',
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-api-key': KEY, 'cache-control': 'no-cache' },
          body: JSON.stringify({ tasks: TASKS }),
          connections: concurrency
        }))
      }
    ]
    rows.push(...withRatios(local))
    if (withPostgres) {
      const admin = new pg.Client({ connectionString: postgresAdmin })
      await admin.connect()
      await admin.query(`CREATE DATABASE ${database}`)
      await admin.end()
      const url = new URL(postgresAdmin)
      url.pathname = `/${database}`
      postgres = await instance(undefined, url.toString())
      rows.push(
        ...withRatios([
          {
            scenario: 'PostgreSQL: ten agents.invoke calls, Promise.all (baseline)',
            ...(await loadInProcess(direct(postgres), duration, concurrency))
          },
          {
            scenario: 'PostgreSQL: the ten as one parallel workflow (coordinator)',
            ...(await loadInProcess(workflow(postgres), duration, concurrency))
          }
        ])
      )
    }
  } finally {
    await closeAll(pglite, postgres)
    await db.close()
    if (withPostgres) {
      const admin = new pg.Client({ connectionString: postgresAdmin })
      await admin.connect()
      await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`)
      await admin.end()
    }
  }
  return {
    title:
      'Coordinator overhead: a 10-task parallel workflow vs the same ten calls with Promise.all (offline provider)',
    rows,
    notes: [
      `Rows are workflows per second (each one = ten offline provider calls, cache bypassed), ${concurrency} ` +
        'at a time; p50/p99 are per workflow. Ratios are to the baseline on the same database ' +
        '(each call also writes its usage-ledger row there).',
      'The coordinator rows add the plan checks, the run row, progress writes (at most one per COORDINATOR_POLL_MS, ' +
        '1 s: none for runs this short) and the outcome write — the ratio is the price of durable runs.',
      ...(withPostgres ? [] : [`PostgreSQL not reachable at ${postgresAdmin}: its row was skipped.`])
    ]
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { title, rows, notes } = await run()
  printTable(rows, title, notes)
  process.exit(0)
}

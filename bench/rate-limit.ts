// Rate-limit overhead, in one run: bare Fastify vs the full stack (auth by API key, three limit scopes,
// metrics, error handler…) with the in-memory limiter vs the Redis limiter (one Lua call for the three
// scopes) vs the full stack with an exempt caller (limiter skipped). Limits
// are set high so every request is admitted. Run alone: `node --import=tsx bench/rate-limit.ts`
// (BENCH_DURATION=s, BENCH_CONNECTIONS=n, BENCH_REDIS_URL to override redis://127.0.0.1:6379).
import Fastify, { type FastifyInstance } from 'fastify'
import { randomBytes } from 'node:crypto'
import { pathToFileURL } from 'node:url'
import app, { serverOptions } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { openDatabase, type Database } from '../src/store/database.js'
import { closeAll, measure, printTable, reachable, withRatios, type BenchResult, type Measurement } from './lib.js'

const USER_KEY = 'amk_bench_rate_limit_user_key'
const ADMIN_KEY = 'amk_bench_rate_limit_admin_key'
const PATH = '/bench/travel/searchFlights'

async function bare (): Promise<FastifyInstance> {
  const server = Fastify()
  server.post(PATH, async () => ({ ok: true }))
  return server
}

async function fullStack (db: Database, redisUrl: string | undefined): Promise<FastifyInstance> {
  const config = loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    DATA_DIR: 'memory://',
    VALID_API_KEYS: `${USER_KEY}:user,${ADMIN_KEY}:admin`,
    RATE_LIMIT_GLOBAL_MAX: '100000000',
    RATE_LIMIT_OVERRIDES: JSON.stringify({ travel: 100_000_000, 'travel.searchFlights': 100_000_000 }),
    ...(redisUrl ? { REDIS_URL: redisUrl, REDIS_KEY_PREFIX: `amkbench:${randomBytes(3).toString('hex')}:` } : {})
  })
  const server = Fastify(serverOptions(config, false))
  await server.register(app, { config, db })
  // Shaped like an agent invoke route (agent:execute, an agent scope and a method scope), minus the LLM.
  await server.register(async (routes) => {
    routes.post(
      PATH,
      {
        config: {
          permission: 'agent:execute',
          rateLimits: [
            { scope: 'travel', max: 60 },
            { scope: 'travel.searchFlights', max: 20 }
          ]
        }
      },
      async () => ({ ok: true })
    )
  })
  return server
}

export async function run (): Promise<BenchResult> {
  const redisUrl = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379'
  const withRedis = await reachable(redisUrl, 6379)
  const db = await openDatabase({ dataDir: 'memory://' })
  const scenarios: Array<{ scenario: string; make: () => Promise<FastifyInstance>; key?: string }> = [
    { scenario: 'bare Fastify (same route, no plugins)', make: bare },
    { scenario: 'full stack, in-memory limiter (3 scopes)', make: () => fullStack(db, undefined), key: USER_KEY },
    ...(withRedis
      ? [{ scenario: 'full stack, Redis limiter (3 scopes)', make: () => fullStack(db, redisUrl), key: USER_KEY }]
      : []),
    { scenario: 'full stack, exempt caller (limiter skipped)', make: () => fullStack(db, undefined), key: ADMIN_KEY }
  ]
  const rows: Array<Measurement & { scenario: string }> = []
  const headersFor = (key?: string): Record<string, string> => ({
    'content-type': 'application/json',
    ...(key ? { 'x-api-key': key } : {})
  })
  try {
    // Unmeasured: warm the JIT on the whole stack, so the first full-stack row is not penalised for it.
    const warm = await fullStack(db, undefined)
    await measure(warm, {
      path: PATH,
      method: 'POST',
      headers: headersFor(USER_KEY),
      body: '{}',
      duration: 3,
      warmup: 0
    }).finally(() => closeAll(warm))
    for (const { scenario, make, key } of scenarios) {
      const server = await make()
      try {
        rows.push({
          scenario,
          ...(await measure(server, { path: PATH, method: 'POST', headers: headersFor(key), body: '{}' }))
        })
      } finally {
        await closeAll(server)
      }
    }
  } finally {
    await db.close()
  }
  return {
    title: 'Rate limits: full stack with the Redis limiter vs the memory limiter vs bare Fastify',
    rows: withRatios(rows),
    notes: [
      'Every request is admitted (limits set high), so the rows compare the cost of counting, not of refusing.',
      'The exempt row (admin caller) is the same stack with the limiter skipped: ' +
        "the gap to it is the limiter's own cost.",
      ...(withRedis ? [] : [`Redis not reachable at ${redisUrl}: the Redis row was skipped.`])
    ]
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { title, rows, notes } = await run()
  printTable(rows, title, notes)
  process.exit(0)
}

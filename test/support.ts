// Test helper: builds the app per test (closed after it), shares one in-memory PGlite per test file
// (a cold start costs seconds; tables are truncated between builds), and finds the real Redis and
// PostgreSQL. A test that needs a service that is absent is skipped with a reason — except under
// CI=true, where an absent service is an error, so CI never skips silently.
import tap, { type Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import { Writable } from 'node:stream'
import { randomBytes } from 'node:crypto'
import net from 'node:net'
import { accessSync, constants } from 'node:fs'
import { delimiter, join } from 'node:path'
import pg from 'pg'
import app, { loggerOptions, serverOptions, type AppOptions } from '../src/app.js'
import { loadConfig, type Config } from '../src/config.js'
import { openDatabase, type Database } from '../src/store/database.js'
import { loadMigrations } from '../src/store/migrate.js'
import type { UsageRow } from '../src/store/usage-ledger.js'

export const POSTGRES_ADMIN_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
const IN_CI = process.env.CI === 'true'

async function reachable (url: string): Promise<boolean> {
  const { hostname, port } = new URL(url)
  return new Promise(resolve => {
    const socket = net.connect({ host: hostname, port: Number(port) }, () => { socket.end(); resolve(true) })
    socket.setTimeout(500, () => { socket.destroy(); resolve(false) })
    socket.on('error', () => resolve(false))
  })
}

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
/** Headless Chromium as root on a closed network: no sandbox, no GPU, no background connections. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run'
]

/** The path of an executable found on PATH (or the path itself when it is executable), else null. */
export function which (command: string): string | null {
  const candidates = command.includes('/')
    ? [command]
    : (process.env.PATH ?? '').split(delimiter).map(dir => join(dir, command))
  for (const candidate of candidates) {
    try { accessSync(candidate, constants.X_OK); return candidate } catch {}
  }
  return null
}

export const services = {
  postgres: await reachable(POSTGRES_ADMIN_URL),
  redis: await reachable(REDIS_URL),
  /** Debian's chromium, driven by playwright-core (browser tests). */
  chromium: which(CHROMIUM_PATH) !== null,
  /** promtool from Debian's prometheus package (`promtool check metrics`). */
  promtool: which('promtool') !== null
}

const where: Record<keyof typeof services, string> = {
  postgres: `not reachable at ${POSTGRES_ADMIN_URL}`,
  redis: `not reachable at ${REDIS_URL}`,
  chromium: `not installed at ${CHROMIUM_PATH} (apt-get install -y chromium)`,
  promtool: 'not on PATH (apt-get install -y prometheus)'
}

/** `false` when the service is available, else the skip reason (CI=true turns absence into a failure). */
export function needs (service: keyof typeof services): false | string {
  if (services[service]) return false
  const reason = `${service} ${where[service]}`
  if (IN_CI) throw new Error(`${reason} (CI=true requires it)`)
  return `SKIPPED: ${reason}`
}

export const TEST_ENV: Record<string, string> = {
  NODE_ENV: 'test',
  LOG_LEVEL: 'silent',
  DATA_DIR: 'memory://',
  HEALTH_CACHE_TTL_MS: '0'
}

export function testConfig (env: Record<string, string | undefined> = {}): Config {
  return loadConfig({ ...TEST_ENV, ...env })
}

let sharedPglite: Promise<Database> | null = null
const TABLES = ['usage_ledger', 'api_keys', 'users', 'workflow_runs', 'idempotency_keys', 'coordinator_stats_resets']

/**
 * Usage-ledger options for tests of what a write stores, not of its timeout. A fresh PGlite's first upserts took
 * 100–400 ms on a loaded 2-core machine (its WebAssembly not yet optimised), past the default 250 ms write timeout,
 * after which a durable write goes to the buffer instead of the database.
 */
export const STORED_WRITES = { writeTimeoutMs: 10_000 }

/** A usage-ledger row of caller-a's travel.searchFlights call (a reservation when status is 'pending'). */
export function usageRow (callId: string, status: UsageRow['status'] = 'success', traceId = 't'): UsageRow {
  return {
    callId,
    callerId: 'caller-a',
    callerType: 'api-key',
    role: 'user',
    agent: 'travel',
    method: 'searchFlights',
    model: 'gemini-2.5-flash',
    inputTokens: 10,
    outputTokens: status === 'pending' ? 0 : 20,
    costUsd: 0.001,
    status,
    durationMs: 5,
    estimated: status === 'pending',
    traceId
  }
}

/** One in-memory PGlite per test file, migrated once, emptied before each use. */
export async function pglite (): Promise<Database> {
  sharedPglite ??= (async () => {
    const db = await openDatabase({ dataDir: 'memory://', migrations: await loadMigrations() })
    tap.teardown(() => db.close())
    return db
  })()
  const db = await sharedPglite
  await db.exec(`TRUNCATE ${TABLES.join(', ')}`)
  return db
}

/** A fresh PostgreSQL database for this test file (dropped at the end); its URL. */
export async function postgresDatabase (): Promise<string> {
  const name = `amk_test_${process.pid}_${randomBytes(4).toString('hex')}`
  const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL })
  await admin.connect()
  await admin.query(`CREATE DATABASE ${name}`)
  await admin.end()
  tap.teardown(async () => {
    const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL })
    await client.connect()
    await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
    await client.end()
  })
  const url = new URL(POSTGRES_ADMIN_URL)
  url.pathname = `/${name}`
  return url.toString()
}

/** A TCP port that was free a moment ago (for child processes that must print their address). */
export async function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })
}

/** A Redis key prefix unique to one test, so parallel test files never share keys. */
export function redisPrefix (): string {
  return `amktest:${process.pid}:${randomBytes(3).toString('hex')}:`
}

export interface BuildOptions {
  env?: Record<string, string | undefined>
  /** Defaults to the file's shared PGlite; pass null to let the app open its own (DATA_DIR / DATABASE_URL). */
  db?: Database | null
  redis?: AppOptions['redis']
  /** Collects every log line (JSON) written while the app runs. */
  logs?: string[]
  /** Extra options passed to the app plugin (overrides for later features). */
  appOptions?: Partial<AppOptions>
  /** Runs after the app is registered and before ready (e.g. to add test-only routes). */
  before?: (app: FastifyInstance) => unknown
}

export async function build (t: Test, options: BuildOptions = {}): Promise<FastifyInstance> {
  const config = testConfig(options.env)
  let logger = serverOptions(config).logger
  if (options.logs) {
    const lines = options.logs
    const stream = new Writable({
      write (chunk, _enc, cb) {
        for (const line of String(chunk).split('\n')) if (line) lines.push(line)
        cb()
      }
    })
    logger = { ...(loggerOptions({ ...config, LOG_LEVEL: 'trace' as Config['LOG_LEVEL'] }) as object), stream }
  }
  const server = Fastify(serverOptions(config, logger))
  const db = options.db === undefined ? await pglite() : options.db ?? undefined
  await server.register(app, { config, db, redis: options.redis, ...options.appOptions })
  t.teardown(() => server.close())
  await options.before?.(server)
  await server.ready()
  return server
}

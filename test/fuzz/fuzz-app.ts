// The app the fuzzer attacks: the real app in-process (in-memory PGlite, offline LLM) with an admin and a
// user API key, and every rate limit raised so requests reach the handlers instead of stopping at 429.
// Also the report printer shared by the tap test and `npm run fuzz`.
import Fastify, { type FastifyInstance } from 'fastify'
import app, { serverOptions } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { AGENT_NAMES, createAgentDefinitions } from '../../src/agents/index.js'
import type { Caller } from './cases.js'
import type { OpenApiDocument } from './openapi.js'
import { describeFailure, type FuzzReport } from './runner.js'

export const ADMIN_KEY = 'amk_fuzz_admin_key_0123456789abcdef'
export const USER_KEY = 'amk_fuzz_user_key_0123456789abcdef'

export const CALLERS: Caller[] = [
  { name: 'admin', headers: { 'x-api-key': ADMIN_KEY } },
  { name: 'user', headers: { 'x-api-key': USER_KEY } }
]

const HIGH = 10_000_000

export function fuzzEnv (): Record<string, string> {
  const definitions = createAgentDefinitions()
  const scopes: Record<string, number> = { global: HIGH, admin: HIGH, coordinator: HIGH }
  for (const agent of AGENT_NAMES) {
    scopes[agent] = HIGH
    for (const method of Object.keys(definitions[agent].methods)) scopes[`${agent}.${method}`] = HIGH
  }
  return {
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    DATA_DIR: 'memory://',
    HEALTH_CACHE_TTL_MS: '0',
    JWT_SECRET: 'fuzz-jwt-secret-0123456789abcdefghijklmnop',
    PASSWORD_HASH_COST: '12',
    VALID_API_KEYS: `${ADMIN_KEY}:admin,${USER_KEY}:user`,
    RATE_LIMIT_GLOBAL_MAX: String(HIGH),
    RATE_LIMIT_ADMIN_MAX: String(HIGH),
    RATE_LIMIT_OVERRIDES: JSON.stringify(scopes),
    LOGIN_RATE_LIMIT: String(HIGH)
  }
}

/** Builds and readies the app; the caller closes it. */
export async function buildFuzzApp (env: Record<string, string> = {}): Promise<FastifyInstance> {
  const config = loadConfig({ ...fuzzEnv(), ...env })
  const server = Fastify(serverOptions(config))
  await server.register(app, { config })
  await server.ready()
  return server
}

export async function openApiOf (server: FastifyInstance): Promise<OpenApiDocument> {
  const res = await server.inject('/openapi.json')
  if (res.statusCode !== 200) throw new Error(`/openapi.json answered ${res.statusCode}`)
  return res.json()
}

/** The figures: requests, by status, >= 500, shape violations, by operation, then one repro per failure class. */
export function formatReport (report: FuzzReport, maxClasses = 40): string {
  const lines = [
    `fuzz seed ${report.seed}: ${report.requests} requests in ${(report.elapsedMs / 1000).toFixed(1)} s`,
    `by status: ${Object.entries(report.byStatus)
      .sort()
      .map(([s, n]) => `${s}=${n}`)
      .join(' ')}`,
    `>= 500: ${report.serverErrors} (+ ${report.documented5xx} documented probe 503s)   shape violations: ${report.shapeViolations}   timeouts: ${report.timeouts}   largest error body: ${report.largestErrorBody} bytes`,
    'by operation:'
  ]
  for (const [id, figures] of Object.entries(report.byOperation).sort()) {
    const callers = Object.entries(figures.byCaller).map(([c, n]) => `${c}=${n}`).join(' ')
    const statuses = Object.entries(figures.byStatus).sort().map(([s, n]) => `${s}=${n}`).join(' ')
    lines.push(`  ${id.padEnd(40)} ${String(figures.requests).padStart(6)}  [${callers}]  ${statuses}`)
  }
  lines.push(
    'slowest requests:',
    ...report.slowest.map(
      ({ ms, fuzzCase: c, status }) =>
        `  ${ms} ms ${c.operation} (${c.caller}, ${c.variant}) → ${status}: ${c.method} ${c.url.slice(0, 120)} body ${(c.payload ?? '').length} bytes ${(c.payload ?? '').slice(0, 60)}`
    )
  )
  if (report.classes.size > 0) {
    lines.push(`${report.failures.length} failures in ${report.classes.size} classes (kind operation status code):`)
    for (const [key, { count, first }] of [...report.classes.entries()].slice(0, maxClasses)) {
      lines.push(`- ${key} ×${count}`, describeFailure(first))
    }
    if (report.classes.size > maxClasses) lines.push(`… ${report.classes.size - maxClasses} more classes`)
  }
  return lines.join('\n')
}

// Runs generated requests against an app in-process (app.inject), each bounded by a timeout, checks every
// answer (no status >= 500; every non-2xx in the error shape, requestId = x-request-id) and tallies the
// figures: requests, by status, >= 500, shape violations, timeouts, by operation; failures keep a repro.
import type { FastifyInstance } from 'fastify'
import type { Readable } from 'node:stream'
import { CaseGenerator, type Caller, type FuzzCase } from './cases.js'
import { createRng } from './random.js'
import { operationsOf, type OpenApiDocument } from './openapi.js'
import { SchemaValues } from './schema-values.js'
import { seedFixtures } from './fixtures.js'

export interface Failure { kind: string, fuzzCase: FuzzCase, status: number, response: string }

export interface FuzzReport {
  seed: number
  requests: number
  byStatus: Record<string, number>
  serverErrors: number
  /**
   * A health probe's 503 (its own documented body, e.g. liveness while the fuzzer itself blocks the loop):
   * counted, not failures. Every other 5xx is a failure, though every operation documents 500 and 503.
   */
  documented5xx: number
  shapeViolations: number
  timeouts: number
  byOperation: Record<string, { requests: number, byCaller: Record<string, number>, byStatus: Record<string, number> }>
  failures: Failure[]
  /** Distinct failure classes (kind, operation, status, code) with their count and first case. */
  classes: Map<string, { count: number, first: Failure }>
  largestErrorBody: number
  /** The slowest requests (in-process time, including waiting behind others), slowest first. */
  slowest: Array<{ ms: number, fuzzCase: FuzzCase, status: number }>
  elapsedMs: number
}

export interface FuzzOptions {
  seed: number
  count: number
  /** The first is the admin: it creates the fixtures (a run, a stream, a key). */
  callers: Caller[]
  concurrency?: number
  timeoutMs?: number
  bodyLimit: number
}

/** Error lists are bounded (DESIGN §15): no error answer may be larger than this. */
export const MAX_ERROR_BODY = 64 * 1024

const ERROR_KEYS = new Set(['statusCode', 'code', 'error', 'message', 'requestId', 'details'])

/** Why a non-2xx answer is not in the error shape, or null when it is. */
export function shapeProblem (status: number, headers: Record<string, unknown>, body: string): string | null {
  let parsed: unknown
  try { parsed = JSON.parse(body) } catch { return `not JSON (content-type ${String(headers['content-type'])})` }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return 'not an object'
  const fields: Record<string, unknown> = { ...parsed }
  const extra = Object.keys(fields).filter(key => !ERROR_KEYS.has(key))
  if (extra.length > 0) return `unexpected fields ${extra.join(', ')}`
  if (fields.statusCode !== status) return `statusCode ${String(fields.statusCode)} != HTTP ${status}`
  if (typeof fields.code !== 'string' || !fields.code.startsWith('AMK_')) { return `code ${String(fields.code)} is not AMK_*` }
  if (typeof fields.error !== 'string') return 'error is not a string'
  if (typeof fields.message !== 'string') return 'message is not a string'
  if (typeof fields.requestId !== 'string' || fields.requestId !== headers['x-request-id']) {
    return `requestId ${String(fields.requestId)} != x-request-id ${String(headers['x-request-id'])}`
  }
  return null
}

async function readAll (stream: Readable, limit: number): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of stream) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk))
    size += buffer.length
    if (size <= limit) chunks.push(buffer)
  }
  return Buffer.concat(chunks).toString('utf8')
}

interface Outcome { status: number, headers: Record<string, unknown>, body: string }

async function send (app: FastifyInstance, fuzzCase: FuzzCase, timeoutMs: number): Promise<Outcome | 'timeout'> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<'timeout'>(resolve => { timer = setTimeout(() => resolve('timeout'), timeoutMs) })
  const request = (async (): Promise<Outcome> => {
    const res = await app.inject({
      method: fuzzCase.method,
      url: fuzzCase.url,
      headers: fuzzCase.headers,
      payload: fuzzCase.payload,
      payloadAsStream: true
    })
    const stream = res.stream()
    const streaming = String(res.headers['content-type'] ?? '').startsWith('text/event-stream')
    if (streaming && res.statusCode === 200) {
      // An SSE 200 is a success. Reading it lets the stream finish (a destroyed inject stream stops reading
      // and holds the server's stream open); one that does not end within a few seconds is closed.
      let sseTimer: NodeJS.Timeout | undefined
      await Promise.race([
        readAll(stream, 0),
        new Promise(resolve => {
          sseTimer = setTimeout(resolve, Math.min(5000, timeoutMs / 2))
        })
      ])
      clearTimeout(sseTimer)
      stream.destroy()
      return { status: res.statusCode, headers: res.headers, body: '' }
    }
    return { status: res.statusCode, headers: res.headers, body: await readAll(stream, 4 << 20) }
  })()
  try {
    return await Promise.race([request, timeout])
  } finally {
    clearTimeout(timer)
  }
}

const excerpt = (text: string | undefined, max = 300) =>
  text === undefined
    ? '(none)'
    : JSON.stringify(text.length > max ? `${text.slice(0, max)}… (${text.length} bytes)` : text)

export function describeFailure (failure: Failure): string {
  const c = failure.fuzzCase
  return [
    `[${failure.kind}] ${c.operation} (${c.caller}, variant ${c.variant}) → ${failure.status}`,
    `  ${c.method} ${c.url.length > 300 ? c.url.slice(0, 300) + '…' : c.url}`,
    `  headers ${excerpt(JSON.stringify(c.headers), 300)}`,
    `  body ${excerpt(c.payload)}`,
    `  response ${excerpt(failure.response, 500)}`
  ].join('\n')
}

/** Runs `count` requests spread round-robin over every operation and caller; never throws for a bad answer. */
export async function fuzz (app: FastifyInstance, doc: OpenApiDocument, options: FuzzOptions): Promise<FuzzReport> {
  const rng = createRng(options.seed)
  const operations = operationsOf(doc)
  const values = new SchemaValues(doc, rng)
  await seedFixtures(app, options.callers[0], values)
  const generator = new CaseGenerator(rng, values, options.bodyLimit)
  const report: FuzzReport = {
    seed: options.seed,
    requests: 0,
    byStatus: {},
    serverErrors: 0,
    documented5xx: 0,
    shapeViolations: 0,
    timeouts: 0,
    byOperation: {},
    failures: [],
    classes: new Map(),
    largestErrorBody: 0,
    slowest: [],
    elapsedMs: 0
  }
  const probes = new Set(operations.filter(op => op.path.startsWith('/api/health')).map(op => op.id))
  const started = performance.now()
  // Cases are generated up front, in order, so a seed always yields the same requests whatever the timing.
  const cases: FuzzCase[] = []
  for (let i = 0; i < options.count; i++) {
    const operation = operations[i % operations.length]
    const caller = options.callers[Math.floor(i / operations.length) % options.callers.length]
    cases.push(generator.next(operation, caller))
  }
  const fail = (failure: Failure, code: string) => {
    report.failures.push(failure)
    const key = `${failure.kind} ${failure.fuzzCase.operation} ${failure.status} ${code}`
    const known = report.classes.get(key)
    if (known) known.count++
    else report.classes.set(key, { count: 1, first: failure })
  }
  let nextIndex = 0
  const worker = async () => {
    while (nextIndex < cases.length) {
      const fuzzCase = cases[nextIndex++]
      const sentAt = performance.now()
      const outcome = await send(app, fuzzCase, options.timeoutMs ?? 15_000).catch((error: Error) => error)
      const ms = Math.round(performance.now() - sentAt)
      if (report.slowest.length < 5 || ms > report.slowest[4].ms) {
        report.slowest.push({
          ms,
          fuzzCase,
          status: typeof outcome === 'object' && !(outcome instanceof Error) ? outcome.status : 0
        })
        report.slowest.sort((a, b) => b.ms - a.ms).splice(5)
      }
      report.requests++
      const perOperation = report.byOperation[fuzzCase.operation] ??= { requests: 0, byCaller: {}, byStatus: {} }
      perOperation.requests++
      perOperation.byCaller[fuzzCase.caller] = (perOperation.byCaller[fuzzCase.caller] ?? 0) + 1
      if (outcome === 'timeout' || outcome instanceof Error) {
        const kind = outcome === 'timeout' ? 'timeout' : 'inject-error'
        if (kind === 'timeout') report.timeouts++
        report.byStatus[kind] = (report.byStatus[kind] ?? 0) + 1
        fail({ kind, fuzzCase, status: 0, response: outcome === 'timeout' ? '(no answer)' : String(outcome.stack) }, '')
        continue
      }
      const status = String(outcome.status)
      report.byStatus[status] = (report.byStatus[status] ?? 0) + 1
      perOperation.byStatus[status] = (perOperation.byStatus[status] ?? 0) + 1
      let code = ''
      try { code = String(JSON.parse(outcome.body).code ?? '') } catch {}
      const documented = outcome.status === 503 && probes.has(fuzzCase.operation)
      if (documented && outcome.status >= 500) report.documented5xx++
      else if (outcome.status >= 500) {
        report.serverErrors++
        fail({ kind: '5xx', fuzzCase, status: outcome.status, response: outcome.body }, code)
      }
      if (!documented && (outcome.status >= 300 || outcome.status < 200)) {
        report.largestErrorBody = Math.max(report.largestErrorBody, outcome.body.length)
        const problem = shapeProblem(outcome.status, outcome.headers, outcome.body)
        if (problem) {
          report.shapeViolations++
          fail(
            { kind: 'shape', fuzzCase, status: outcome.status, response: `${problem}: ${outcome.body}` },
            problem.replace(/[0-9a-f-]{36}|\d+/g, '#')
          )
        }
      }
    }
  }
  await Promise.all(Array.from({ length: options.concurrency ?? 8 }, worker))
  report.elapsedMs = Math.round(performance.now() - started)
  return report
}

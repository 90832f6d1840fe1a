// The SQL half of the usage ledger's repository: every statement on usage_ledger and usage_instances lives
// here (usage-ledger.ts is the write path around it, src/limits/usage-report.ts shapes the reports). It
// holds the stored shape of a row (also what the buffer holds) and the idempotent upsert every write uses —
// keyed by call_id, a settlement replaces a reservation (or a sweep's 'interrupted'), nothing replaces a
// settlement. Same SQL on PGlite and PostgreSQL; on PGlite the upsert is sent with its values inlined
// (upsertInline), since each bound statement costs it six protocol round trips through its WASM.
import { randomUUID } from 'node:crypto'
import type { Queryable } from './database.js'
import { codeOf } from '../errors.js'
import { sqlLiteral } from './sql-literal.js'

export type UsageStatus = 'pending' | 'success' | 'error' | 'cancelled' | 'interrupted'

export interface UsageRow {
  /** The call's id (generated when absent); a second write of the same id settles or is ignored. */
  callId?: string
  /** When the call started (ms since the epoch; default now): the row's created_at. */
  startedAt?: number
  callerId: string
  callerType: string
  role: string | null
  agent: string
  method: string
  model: string
  inputTokens: number
  outputTokens: number
  costUsd: number
  status: UsageStatus
  durationMs: number
  estimated: boolean
  traceId: string | null
  streamId?: string | null
  runId?: string | null
}

export type Stored = Record<(typeof COLUMNS)[number], unknown>
const COLUMNS = [
  'call_id',
  'created_at',
  'instance_id',
  'caller_id',
  'caller_type',
  'role',
  'agent',
  'method',
  'model',
  'input_tokens',
  'output_tokens',
  'cost_usd',
  'status',
  'duration_ms',
  'estimated',
  'trace_id',
  'stream_id',
  'run_id',
  'settled_at'
] as const
const SETTLED = [
  'model',
  'input_tokens',
  'output_tokens',
  'cost_usd',
  'status',
  'duration_ms',
  'estimated',
  'trace_id',
  'settled_at'
]
const UPSERT_TAIL = ` ON CONFLICT (call_id) DO UPDATE SET ${SETTLED.map(c => `${c} = EXCLUDED.${c}`).join(', ')}
  WHERE usage_ledger.status IN ('pending', 'interrupted') AND EXCLUDED.status <> 'pending'`

/** Constraint and data errors (SQLSTATE 22…, 23…): retrying the row can never succeed. */
export function isDataError (error: unknown): boolean {
  return /^2[23]/.test(codeOf(error) ?? '')
}

/** Whether a buffered entry has the stored shape (the buffer holds parsed JSON). */
export function isStored (entry: unknown): entry is Stored {
  return typeof entry === 'object' && entry !== null && 'call_id' in entry && typeof entry.call_id === 'string'
}

export function stored (row: UsageRow, instanceId: string): Stored {
  return {
    call_id: row.callId ?? randomUUID(),
    created_at: new Date(row.startedAt ?? Date.now()).toISOString(),
    instance_id: instanceId,
    caller_id: row.callerId,
    caller_type: row.callerType,
    role: row.role,
    agent: row.agent,
    method: row.method,
    model: row.model,
    input_tokens: Math.round(row.inputTokens),
    output_tokens: Math.round(row.outputTokens),
    cost_usd: row.costUsd,
    status: row.status,
    duration_ms: Math.round(row.durationMs),
    estimated: row.estimated,
    trace_id: row.traceId,
    stream_id: row.streamId ?? null,
    run_id: row.runId ?? null,
    settled_at: row.status === 'pending' ? null : new Date().toISOString()
  }
}

/** One row per call id: a settlement wins over a reservation of the same call in the same batch. */
export function dedupe (rows: Stored[]): Stored[] {
  const byCall = new Map<unknown, Stored>()
  for (const row of rows) {
    const seen = byCall.get(row.call_id)
    if (!seen || seen.status === 'pending') byCall.set(row.call_id, row)
  }
  return [...byCall.values()]
}

/** Writes stored rows in one statement (the idempotent upsert). */
export type RowWriter = (rows: Stored[]) => Promise<unknown>

const INSERT_HEAD = `INSERT INTO usage_ledger (${COLUMNS.join(', ')}) VALUES `

/**
 * Batches up to this many rows go out as named statements (one per row count): every write of 'durable' mode
 * and the group commits of calls made together. PostgreSQL parses each once per connection instead of on every
 * write, about a fifth of a one-row write's time there; larger batches are rare and stay unnamed.
 */
const NAMED_ROWS = 16

/** The upsert with bound parameters. */
export function upsertWith (db: Queryable): RowWriter {
  const texts: string[] = []
  const textFor = (n: number) => {
    const placeholders = Array.from({ length: n }, (_, r) =>
      `(${COLUMNS.map((_, c) => `$${r * COLUMNS.length + c + 1}`).join(', ')})`)
    return `${INSERT_HEAD}${placeholders.join(', ')}${UPSERT_TAIL}`
  }
  return async rows => {
    const n = rows.length
    const params = rows.flatMap(row => COLUMNS.map(c => row[c]))
    if (n > NAMED_ROWS) return db.query(textFor(n), params)
    texts[n] ??= textFor(n)
    return db.query(texts[n], params, `amk_usage_upsert_${n}`)
  }
}

/**
 * The upsert through `exec` (PGlite's simple query protocol), values inlined: one exchange with the database
 * instead of parse, describe, bind, describe, execute, sync. A single row (every write of 'durable' mode)
 * runs a statement prepared once for the session, which also skips parsing and planning: about 40% of the
 * CPU of a bound write on PGlite. Several rows go in one multi-row INSERT.
 */
export function upsertInline (exec: (sql: string) => Promise<unknown>): RowWriter {
  let prepared: Promise<unknown> | undefined
  const prepare = () => exec(
    `PREPARE usage_upsert AS ${INSERT_HEAD}(${COLUMNS.map((_, c) => `$${c + 1}`).join(', ')})${UPSERT_TAIL}`
  ).catch(error => {
    if (codeOf(error) === '42P05') return // another ledger on this database prepared the same text
    prepared = undefined
    throw error
  })
  const values = (row: Stored) => COLUMNS.map(c => sqlLiteral(row[c])).join(', ')
  return async rows => {
    if (rows.length > 1) return exec(`${INSERT_HEAD}${rows.map(row => `(${values(row)})`).join(', ')}${UPSERT_TAIL}`)
    const sql = `EXECUTE usage_upsert(${values(rows[0])})`
    await (prepared ??= prepare())
    return exec(sql).catch(error => {
      if (codeOf(error) === '26000') prepared = undefined // deallocated (DEALLOCATE, DISCARD ALL): prepare again
      throw error
    })
  }
}

/** Writes rows; on a data error retries them one by one and reports each bad row. */
export async function upsertTolerant (
  upsert: RowWriter,
  rows: Stored[],
  onBadRow: (row: Stored, error: unknown) => void
) {
  try {
    await upsert(dedupe(rows))
  } catch (error) {
    if (!isDataError(error) || rows.length === 1) {
      if (rows.length === 1 && isDataError(error)) return onBadRow(rows[0], error)
      throw error
    }
    for (const row of rows) {
      await upsert([row]).catch(err => {
        if (isDataError(err)) onBadRow(row, err)
        else throw err
      })
    }
  }
}

/**
 * Settles 'interrupted' the pending rows older than staleMs of replicas (other than this one) whose last
 * heartbeat is older than staleMs; returns their call ids.
 */
export async function settleStale (db: Queryable, staleMs: number, instanceId: string): Promise<string[]> {
  const rows = await db.query<{ call_id: string }>(`UPDATE usage_ledger SET status = 'interrupted', settled_at = now()
    WHERE status = 'pending' AND instance_id <> $2 AND created_at < now() - $1::int * interval '1 millisecond'
      AND NOT EXISTS (SELECT 1 FROM usage_instances i WHERE i.instance_id = usage_ledger.instance_id
                        AND i.heartbeat_at >= now() - $1::int * interval '1 millisecond')
    RETURNING call_id`, [staleMs, instanceId])
  return rows.map(r => r.call_id)
}

export async function heartbeat (db: Queryable, instanceId: string): Promise<void> {
  await db.query(`INSERT INTO usage_instances (instance_id) VALUES ($1)
    ON CONFLICT (instance_id) DO UPDATE SET heartbeat_at = now()`, [instanceId])
}

/** At shutdown: this replica's pending rows become 'interrupted' and its heartbeat row goes. */
export async function retire (db: Queryable, instanceId: string): Promise<void> {
  await db.query(
    "UPDATE usage_ledger SET status = 'interrupted', settled_at = now() WHERE status = 'pending' AND instance_id = $1",
    [instanceId]
  )
  await db.query('DELETE FROM usage_instances WHERE instance_id = $1', [instanceId])
}

export type CallerTotals = { calls: number, input_tokens: number, output_tokens: number, cost_usd: number }

/** Calls, tokens and dollars of one caller since a time. */
export async function callerTotals (db: Queryable, callerId: string, since: Date): Promise<CallerTotals> {
  const [row] = await db.query<CallerTotals>(
    `SELECT count(*)::int AS calls, coalesce(sum(input_tokens), 0)::int8 AS input_tokens,
            coalesce(sum(output_tokens), 0)::int8 AS output_tokens, coalesce(sum(cost_usd), 0)::numeric AS cost_usd
       FROM usage_ledger WHERE caller_id = $1 AND created_at >= $2`,
    [callerId, since.toISOString()]
  )
  return row
}

export type ReportDimension = 'caller_id' | 'agent' | 'model' | 'day'
export const REPORT_DIMENSIONS: ReportDimension[] = ['caller_id', 'agent', 'model', 'day']

/** A row of the roll-up: the dimensions it is grouped by are set, the others null (see `grp`). */
export type ReportRow = {
  caller_id: string | null
  agent: string | null
  model: string | null
  day: string | null
  /** GROUPING(caller_id, agent, model, day): a bit is 1 for every dimension NOT grouped by. */
  grp: number
  calls: number
  input_tokens: number
  output_tokens: number
  cost_usd: number
}

/**
 * The ledger rows of a period (and caller) rolled up in one scan with GROUPING SETS — by caller, agent,
 * model and UTC day together, by each alone, and in total — so every roll-up comes from the same snapshot.
 */
export async function reportRows (
  db: Queryable,
  filter: { from: Date; to: Date; callerId?: string }
): Promise<ReportRow[]> {
  const params: unknown[] = [filter.from.toISOString(), filter.to.toISOString()]
  let where = 'created_at >= $1 AND created_at < $2'
  if (filter.callerId) {
    params.push(filter.callerId)
    where += ' AND caller_id = $3'
  }
  const utcDay = "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
  return db.query<ReportRow>(
    `
    SELECT caller_id, agent, model, day, GROUPING(caller_id, agent, model, day) AS grp,
           count(*) AS calls, coalesce(sum(input_tokens), 0) AS input_tokens,
           coalesce(sum(output_tokens), 0) AS output_tokens, coalesce(sum(cost_usd), 0) AS cost_usd
    FROM (SELECT *, ${utcDay} AS day FROM usage_ledger WHERE ${where}) AS ledger
    GROUP BY GROUPING SETS ((caller_id, agent, model, day), (caller_id), (agent), (model), (day), ())
    ORDER BY day DESC NULLS LAST, cost_usd DESC, caller_id, agent, model`,
    params
  )
}

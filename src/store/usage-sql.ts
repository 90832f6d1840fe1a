// The usage ledger's rows and SQL: the stored shape of a row (also what the buffer holds), and the
// idempotent upsert every write uses — keyed by call_id, a settlement replaces a reservation (or a sweep's
// 'interrupted'), nothing replaces a settlement. Same SQL on PGlite and PostgreSQL.
import { randomUUID } from 'node:crypto'
import type { Queryable } from './database.js'

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
const COLUMNS = ['call_id', 'created_at', 'instance_id', 'caller_id', 'caller_type', 'role', 'agent', 'method', 'model',
  'input_tokens', 'output_tokens', 'cost_usd', 'status', 'duration_ms', 'estimated', 'trace_id', 'stream_id', 'run_id', 'settled_at'] as const
const SETTLED = ['model', 'input_tokens', 'output_tokens', 'cost_usd', 'status', 'duration_ms', 'estimated', 'trace_id', 'settled_at']
const UPSERT_TAIL = ` ON CONFLICT (call_id) DO UPDATE SET ${SETTLED.map(c => `${c} = EXCLUDED.${c}`).join(', ')}
  WHERE usage_ledger.status IN ('pending', 'interrupted') AND EXCLUDED.status <> 'pending'`

/** Constraint and data errors (SQLSTATE 22…, 23…): retrying the row can never succeed. */
export function isDataError (error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code
  return typeof code === 'string' && /^2[23]/.test(code)
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

export async function upsert (db: Queryable, rows: Stored[]) {
  const placeholders = rows.map((_, r) => `(${COLUMNS.map((_, c) => `$${r * COLUMNS.length + c + 1}`).join(', ')})`)
  await db.query(`INSERT INTO usage_ledger (${COLUMNS.join(', ')}) VALUES ${placeholders.join(', ')}${UPSERT_TAIL}`,
    rows.flatMap(row => COLUMNS.map(c => row[c])))
}

/** Writes rows; on a data error retries them one by one and reports each bad row. */
export async function upsertTolerant (db: Queryable, rows: Stored[], onBadRow: (row: Stored, error: unknown) => void) {
  try {
    await upsert(db, dedupe(rows))
  } catch (error) {
    if (!isDataError(error) || rows.length === 1) {
      if (rows.length === 1 && isDataError(error)) return onBadRow(rows[0], error)
      throw error
    }
    for (const row of rows) await upsert(db, [row]).catch(err => { if (isDataError(err)) onBadRow(row, err); else throw err })
  }
}

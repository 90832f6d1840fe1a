// The usage ledger: one row per LLM provider call (success, error or cancelled), the source of truth
// for usage reports and budgets. Same SQL on PGlite and PostgreSQL.
import type { Queryable } from './database.js'

export interface UsageRow {
  callerId: string
  callerType: string
  role: string | null
  agent: string
  method: string
  model: string
  inputTokens: number
  outputTokens: number
  costUsd: number
  status: 'success' | 'error' | 'cancelled'
  durationMs: number
  estimated: boolean
  traceId: string | null
  streamId?: string | null
  runId?: string | null
}

export interface UsageTotals { calls: number, inputTokens: number, outputTokens: number, costUsd: number }

export interface UsageLedger {
  record(row: UsageRow): Promise<void>
  /** Totals of one caller since a time (budgets, /api/usage/me). */
  totals(callerId: string, since: Date): Promise<UsageTotals>
}

const COLUMNS = ['caller_id', 'caller_type', 'role', 'agent', 'method', 'model', 'input_tokens', 'output_tokens',
  'cost_usd', 'status', 'duration_ms', 'estimated', 'trace_id', 'stream_id', 'run_id']
/** Rows per INSERT when calls pile up (15 parameters each, far below Postgres' 65535). */
const BATCH = 200

function values (row: UsageRow): unknown[] {
  return [row.callerId, row.callerType, row.role, row.agent, row.method, row.model, Math.round(row.inputTokens),
    Math.round(row.outputTokens), row.costUsd, row.status, Math.round(row.durationMs), row.estimated,
    row.traceId, row.streamId ?? null, row.runId ?? null]
}

/**
 * record() resolves once the row is stored. Rows that arrive while an INSERT is running are written
 * together in the next one (group commit), so concurrent calls share round trips instead of queueing.
 */
export function createUsageLedger (db: Queryable): UsageLedger {
  let queue: Array<{ row: UsageRow, resolve(): void, reject(error: unknown): void }> = []
  let writing = false

  async function drain () {
    writing = true
    // Wait one turn of the event loop first: PGlite runs a query synchronously, so without it the rows
    // of requests still in flight never get to join and every call pays for its own INSERT.
    await new Promise(resolve => setImmediate(resolve))
    while (queue.length > 0) {
      const batch = queue.slice(0, BATCH)
      queue = queue.slice(BATCH)
      const placeholders = batch.map((_, r) => `(${COLUMNS.map((_, c) => `$${r * COLUMNS.length + c + 1}`).join(', ')})`)
      try {
        await db.query(`INSERT INTO usage_ledger (${COLUMNS.join(', ')}) VALUES ${placeholders.join(', ')}`, batch.flatMap(b => values(b.row)))
        for (const item of batch) item.resolve()
      } catch (error) {
        for (const item of batch) item.reject(error)
      }
    }
    writing = false
  }

  return {
    record (row) {
      return new Promise<void>((resolve, reject) => {
        queue.push({ row, resolve, reject })
        if (!writing) drain().catch(() => {}) // drain settles every caller itself
      })
    },
    async totals (callerId, since) {
      const [row] = await db.query<{ calls: number, input_tokens: number, output_tokens: number, cost_usd: number }>(
        `SELECT count(*)::int AS calls, coalesce(sum(input_tokens), 0)::int8 AS input_tokens,
                coalesce(sum(output_tokens), 0)::int8 AS output_tokens, coalesce(sum(cost_usd), 0)::numeric AS cost_usd
           FROM usage_ledger WHERE caller_id = $1 AND created_at >= $2`,
        [callerId, since.toISOString()]
      )
      return { calls: row.calls, inputTokens: row.input_tokens, outputTokens: row.output_tokens, costUsd: row.cost_usd }
    }
  }
}

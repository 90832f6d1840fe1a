// Usage read from the usage ledger, framework-free: totals and roll-ups by caller, agent, model and UTC
// day, computed in one scan with GROUPING SETS so every roll-up comes from the same snapshot.
import type { Queryable } from '../store/database.js'

export interface UsageFigures { calls: number, inputTokens: number, outputTokens: number, totalTokens: number, costUsd: number }
export interface UsageRow extends UsageFigures { callerId: string, agent: string, model: string, day: string }

export interface UsageReport {
  totals: UsageFigures
  byCaller: Array<UsageFigures & { callerId: string }>
  byAgent: Array<UsageFigures & { agent: string }>
  byModel: Array<UsageFigures & { model: string }>
  byDay: Array<UsageFigures & { day: string }>
  /** One row per caller, agent, model and day (newest day first), at most `limit`. */
  rows: UsageRow[]
  truncated: boolean
}

export interface UsageFilter { from: Date, to: Date, callerId?: string, limit?: number }

type Dimension = 'caller_id' | 'agent' | 'model' | 'day'
const DIMENSIONS: Dimension[] = ['caller_id', 'agent', 'model', 'day']

interface RawRow { caller_id: string | null, agent: string | null, model: string | null, day: string | null, grp: number, calls: number, input_tokens: number, output_tokens: number, cost_usd: number }

function figures (row: RawRow): UsageFigures {
  const inputTokens = Number(row.input_tokens)
  const outputTokens = Number(row.output_tokens)
  return { calls: Number(row.calls), inputTokens, outputTokens, totalTokens: inputTokens + outputTokens, costUsd: Math.round(Number(row.cost_usd) * 1e8) / 1e8 }
}

/** GROUPING() bit mask of a set: a bit is 1 for every dimension NOT grouped by. */
function mask (grouped: Dimension[]): number {
  return DIMENSIONS.reduce((bits, dim, i) => bits | (grouped.includes(dim) ? 0 : 1 << (DIMENSIONS.length - 1 - i)), 0)
}

export async function usageReport (db: Queryable, filter: UsageFilter): Promise<UsageReport> {
  const limit = filter.limit ?? 1000
  const params: unknown[] = [filter.from.toISOString(), filter.to.toISOString()]
  let where = 'created_at >= $1 AND created_at < $2'
  if (filter.callerId) {
    params.push(filter.callerId)
    where += ' AND caller_id = $3'
  }
  const rows = await db.query<RawRow & Record<string, unknown>>(`
    SELECT caller_id, agent, model, day, GROUPING(caller_id, agent, model, day) AS grp,
           count(*) AS calls, coalesce(sum(input_tokens), 0) AS input_tokens,
           coalesce(sum(output_tokens), 0) AS output_tokens, coalesce(sum(cost_usd), 0) AS cost_usd
    FROM (SELECT *, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day FROM usage_ledger WHERE ${where}) AS ledger
    GROUP BY GROUPING SETS ((caller_id, agent, model, day), (caller_id), (agent), (model), (day), ())
    ORDER BY day DESC NULLS LAST, cost_usd DESC, caller_id, agent, model`, params)

  const report: UsageReport = {
    totals: { calls: 0, inputTokens: 0, outputTokens: 0, totalTokens: 0, costUsd: 0 },
    byCaller: [],
    byAgent: [],
    byModel: [],
    byDay: [],
    rows: [],
    truncated: false
  }
  for (const row of rows) {
    const grp = Number(row.grp)
    if (grp === mask(DIMENSIONS)) {
      if (report.rows.length < limit) report.rows.push({ callerId: row.caller_id!, agent: row.agent!, model: row.model!, day: row.day!, ...figures(row) })
      else report.truncated = true
    } else if (grp === mask(['caller_id'])) report.byCaller.push({ callerId: row.caller_id!, ...figures(row) })
    else if (grp === mask(['agent'])) report.byAgent.push({ agent: row.agent!, ...figures(row) })
    else if (grp === mask(['model'])) report.byModel.push({ model: row.model!, ...figures(row) })
    else if (grp === mask(['day'])) report.byDay.push({ day: row.day!, ...figures(row) })
    else if (grp === mask([])) report.totals = figures(row)
  }
  return report
}

/** Tokens and dollars a caller used since `since` (budgets seed their counters from this). */
export async function ledgerTotals (db: Queryable, callerId: string, since: Date): Promise<{ tokens: number, usd: number }> {
  const [row] = await db.query<{ tokens: number, usd: number }>(
    `SELECT coalesce(sum(input_tokens + output_tokens), 0)::bigint AS tokens, coalesce(sum(cost_usd), 0) AS usd
     FROM usage_ledger WHERE caller_id = $1 AND created_at >= $2`, [callerId, since.toISOString()])
  return { tokens: Number(row?.tokens ?? 0), usd: Number(row?.usd ?? 0) }
}

const DAY_MS = 86_400_000
const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/

/**
 * The period of a usage query. `from`/`to` are ISO dates (whole UTC days, both inclusive) or date-times
 * (`to` exclusive); by default `to` is the end of today (UTC) and `from` 30 days before `to`. Returns the problem when bad.
 */
export function usagePeriod (from: string | undefined, to: string | undefined, now = Date.now()): { from: Date, to: Date } | { field: string, message: string } {
  const today = Math.floor(now / DAY_MS) * DAY_MS
  const end = to === undefined ? new Date(today + DAY_MS) : new Date(Date.parse(to) + (DATE_ONLY.test(to) ? DAY_MS : 0))
  const start = from === undefined ? new Date(end.getTime() - 30 * DAY_MS) : new Date(Date.parse(from))
  if (Number.isNaN(start.getTime())) return { field: 'query.from', message: 'is not a date or date-time' }
  if (Number.isNaN(end.getTime())) return { field: 'query.to', message: 'is not a date or date-time' }
  if (start >= end) return { field: 'query.from', message: 'must be before query.to' }
  if (end.getTime() - start.getTime() > 366 * DAY_MS) return { field: 'query.from', message: 'the period may span at most 366 days' }
  return { from: start, to: end }
}

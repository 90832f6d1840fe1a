// Usage read from the usage ledger, framework-free: totals and roll-ups by caller, agent, model and UTC
// day, shaped from the one GROUPING SETS scan of src/store/usage-sql.ts (so every roll-up comes from the
// same snapshot), and the period a usage query covers.
import type { Queryable } from '../store/database.js'
import { REPORT_DIMENSIONS, reportRows, type ReportDimension, type ReportRow } from '../store/usage-sql.js'

export interface UsageFigures {
  calls: number
  inputTokens: number
  outputTokens: number
  totalTokens: number
  costUsd: number
}
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

function figures (row: ReportRow): UsageFigures {
  const inputTokens = Number(row.input_tokens)
  const outputTokens = Number(row.output_tokens)
  return {
    calls: Number(row.calls),
    inputTokens,
    outputTokens,
    totalTokens: inputTokens + outputTokens,
    costUsd: Math.round(Number(row.cost_usd) * 1e8) / 1e8
  }
}

/** GROUPING() bit mask of a set: a bit is 1 for every dimension NOT grouped by. */
function mask (grouped: ReportDimension[]): number {
  return REPORT_DIMENSIONS.reduce(
    (bits, dim, i) => bits | (grouped.includes(dim) ? 0 : 1 << (REPORT_DIMENSIONS.length - 1 - i)),
    0
  )
}

export async function usageReport (db: Queryable, filter: UsageFilter): Promise<UsageReport> {
  const limit = filter.limit ?? 1000
  const rows = await reportRows(db, filter)

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
    const { caller_id: callerId, agent, model, day } = row
    if (grp === mask(REPORT_DIMENSIONS)) {
      if (report.rows.length >= limit) report.truncated = true
      else if (callerId !== null && agent !== null && model !== null && day !== null) {
        report.rows.push({ callerId, agent, model, day, ...figures(row) })
      }
    } else if (grp === mask(['caller_id']) && callerId !== null) report.byCaller.push({ callerId, ...figures(row) })
    else if (grp === mask(['agent']) && agent !== null) report.byAgent.push({ agent, ...figures(row) })
    else if (grp === mask(['model']) && model !== null) report.byModel.push({ model, ...figures(row) })
    else if (grp === mask(['day']) && day !== null) report.byDay.push({ day, ...figures(row) })
    else if (grp === mask([])) report.totals = figures(row)
  }
  return report
}

const DAY_MS = 86_400_000
const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/

/**
 * The period of a usage query. `from`/`to` are ISO dates (whole UTC days, both inclusive) or date-times
 * (`to` exclusive); by default `to` is the end of today (UTC) and `from` 30 days before `to`. Returns the problem
 * when bad.
 */
export function usagePeriod (
  from: string | undefined,
  to: string | undefined,
  now = Date.now()
): { from: Date; to: Date } | { field: string; message: string } {
  const today = Math.floor(now / DAY_MS) * DAY_MS
  const end = to === undefined ? new Date(today + DAY_MS) : new Date(Date.parse(to) + (DATE_ONLY.test(to) ? DAY_MS : 0))
  const start = from === undefined ? new Date(end.getTime() - 30 * DAY_MS) : new Date(Date.parse(from))
  if (Number.isNaN(start.getTime())) return { field: 'query.from', message: 'is not a date or date-time' }
  if (Number.isNaN(end.getTime())) return { field: 'query.to', message: 'is not a date or date-time' }
  if (start >= end) return { field: 'query.from', message: 'must be before query.to' }
  if (end.getTime() - start.getTime() > 366 * DAY_MS) {
    return { field: 'query.from', message: 'the period may span at most 366 days' }
  }
  return { from: start, to: end }
}

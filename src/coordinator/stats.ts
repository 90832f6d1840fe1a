// Coordinator statistics (DESIGN §9) from the stored runs since the last reset: totals, by strategy,
// average duration, and per-agent calls with their success rate. Every replica reads the same numbers.
import type { RunStore } from './run-store.js'

export interface StrategyStats { total: number, completed: number, failed: number, cancelled: number, running: number }

export interface CoordinatorStats {
  since: string
  total: number
  completed: number
  failed: number
  cancelled: number
  /** Runs in progress now, on any replica (a replica that stopped reporting is not counted). */
  active: number
  byStrategy: Record<string, StrategyStats>
  averageDurationMs: number | null
  agents: Record<string, { calls: number, succeeded: number, failed: number, successRate: number }>
}

const empty = (): StrategyStats => ({ total: 0, completed: 0, failed: 0, cancelled: 0, running: 0 })

export async function readStats (store: RunStore, staleMs: number): Promise<CoordinatorStats> {
  const { since, byStatus, byAgent, active } = await store.stats(staleMs)
  const totals = empty()
  const byStrategy: Record<string, StrategyStats> = {}
  let durationMs = 0
  let timed = 0
  for (const row of byStatus) {
    const strategy = String(row.strategy)
    const status = String(row.status) as keyof StrategyStats
    const runs = Number(row.runs)
    byStrategy[strategy] ??= empty()
    byStrategy[strategy].total += runs
    totals.total += runs
    if (status in totals && status !== 'total') {
      byStrategy[strategy][status] += runs
      totals[status] += runs
    }
    durationMs += Number(row.total_ms)
    timed += Number(row.timed)
  }
  const agents: CoordinatorStats['agents'] = {}
  for (const row of byAgent) {
    const calls = Number(row.calls)
    const succeeded = Number(row.succeeded)
    agents[String(row.agent)] = {
      calls,
      succeeded,
      failed: calls - succeeded,
      successRate: calls ? Math.round((succeeded / calls) * 1000) / 1000 : 0
    }
  }
  return {
    since,
    total: totals.total,
    completed: totals.completed,
    failed: totals.failed,
    cancelled: totals.cancelled,
    active,
    byStrategy,
    averageDurationMs: timed ? Math.round(durationMs / timed) : null,
    agents
  }
}

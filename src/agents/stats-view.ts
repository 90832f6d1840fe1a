// Turns raw counters (cluster or replica) and local latency samples into the statistics the
// management routes return: rates, token totals, latency percentiles, per method and per model.
import type { HealthStatus } from '../schemas/common.js'
import { percentile, unflatten, type Counters } from './stats-counters.js'

export interface StatsSource {
  agent: string
  scope: 'cluster' | 'replica'
  counters: Array<[string, number]>
  /** Epoch ms the counters start from (last reset, or creation). */
  since: number
  lastCallAt: number | null
  lastError: { code: string, message: string, at: string } | null
  activeStreams: number
  latencies: number[]
  methodLatencies: Map<string, number[]>
}

export interface LatencySummary { avg: number, p50: number, p95: number, p99: number, max: number, samples: number }

export interface CallFigures {
  calls: number
  successes: number
  errors: number
  rejected: number
  cancelled: number
  errorRate: number
  cache: { hits: number, misses: number, hitRate: number }
  tokens: { input: number, output: number, total: number }
  costUsd: number
  llm: { calls: number, errors: number }
  latencyMs: LatencySummary
}

export interface AgentStatsSummary extends CallFigures {
  agent: string
  scope: 'cluster' | 'replica'
  since: string
  streams: { active: number, started: number }
  lastCallAt: string | null
  lastError: { code: string, message: string, at: string } | null
}

export interface ModelFigures {
  calls: number
  errors: number
  tokens: { input: number; output: number; total: number }
  costUsd: number
}

export interface AgentStatsDetail extends AgentStatsSummary {
  byMethod: Record<string, CallFigures>
  byModel: Record<string, ModelFigures>
}

export interface AgentHealth {
  status: HealthStatus
  message: string
  errorRate: number
  calls: number
  errors: number
  windowMs: number
  minCalls: number
  thresholds: { degraded: number, unhealthy: number }
}

const ratio = (part: number, whole: number) => whole === 0 ? 0 : part / whole
const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits

function latency (counters: Counters, samples: number[]): LatencySummary {
  const sorted = [...samples].sort((a, b) => a - b)
  return {
    avg: round(ratio(counters.latencyMsSum, counters.timedCalls)),
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    max: sorted.length ? sorted[sorted.length - 1] : 0,
    samples: sorted.length
  }
}

function figures (c: Counters, samples: number[]): CallFigures {
  return {
    calls: c.calls,
    successes: c.successes,
    errors: c.errors,
    rejected: c.rejected,
    cancelled: c.cancelled,
    errorRate: ratio(c.errors, c.calls),
    cache: { hits: c.cacheHits, misses: c.cacheMisses, hitRate: ratio(c.cacheHits, c.cacheHits + c.cacheMisses) },
    tokens: { input: c.inputTokens, output: c.outputTokens, total: c.inputTokens + c.outputTokens },
    costUsd: c.costUsd,
    llm: { calls: c.llmCalls, errors: c.llmErrors },
    latencyMs: latency(c, samples)
  }
}

export function summaryOf (source: StatsSource): AgentStatsSummary {
  const { totals } = unflatten(source.counters)
  return {
    agent: source.agent,
    scope: source.scope,
    since: new Date(source.since).toISOString(),
    ...figures(totals, source.latencies),
    streams: { active: source.activeStreams, started: totals.streamsStarted },
    lastCallAt: source.lastCallAt === null ? null : new Date(source.lastCallAt).toISOString(),
    lastError: source.lastError
  }
}

export function detailOf (source: StatsSource): AgentStatsDetail {
  const { methods, models } = unflatten(source.counters)
  const byMethod: Record<string, CallFigures> = {}
  for (const [name, counters] of [...methods].sort(([a], [b]) => a.localeCompare(b))) {
    byMethod[name] = figures(counters, source.methodLatencies.get(name) ?? [])
  }
  const byModel: Record<string, ModelFigures> = {}
  for (const [name, c] of [...models].sort(([a], [b]) => a.localeCompare(b))) {
    byModel[name] = {
      calls: c.llmCalls,
      errors: c.llmErrors,
      tokens: { input: c.inputTokens, output: c.outputTokens, total: c.inputTokens + c.outputTokens },
      costUsd: c.costUsd
    }
  }
  return { ...summaryOf(source), byMethod, byModel }
}

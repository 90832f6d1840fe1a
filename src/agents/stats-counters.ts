// The counters behind per-agent statistics, as flat `scope|name|field` keys so the same increments
// apply to a local map and to a Redis hash (HINCRBY / HINCRBYFLOAT), and a percentile helper.
import type { InvocationRecord, LlmCallRecord } from './types.js'

export const COUNTER_FIELDS = [
  'calls', 'successes', 'errors', 'rejected', 'cancelled', 'cacheHits', 'cacheMisses',
  'timedCalls', 'latencyMsSum', 'llmCalls', 'llmErrors', 'inputTokens', 'outputTokens', 'costUsd', 'streamsStarted'
] as const
export type CounterField = typeof COUNTER_FIELDS[number]
export type Counters = Record<CounterField, number>
/** Fields summed as floats (HINCRBYFLOAT); the rest are integers. */
export const FLOAT_FIELDS: ReadonlySet<CounterField> = new Set(['costUsd', 'latencyMsSum'])

const COUNTER_FIELD_SET: ReadonlySet<string> = new Set(COUNTER_FIELDS)

/** Whether `name` is one of COUNTER_FIELDS. */
export function isCounterField (name: string): name is CounterField {
  return COUNTER_FIELD_SET.has(name)
}

/** Error codes that mean the request was refused before the agent worked on it: not agent errors. */
export const REJECTION_CODES: ReadonlySet<string> = new Set([
  'AMK_VALIDATION', 'AMK_BAD_REQUEST', 'AMK_NOT_FOUND', 'AMK_BUDGET_EXCEEDED', 'AMK_RATE_LIMITED',
  'AMK_UNAUTHORIZED', 'AMK_FORBIDDEN', 'AMK_TOO_MANY_STREAMS'
])

export type Increment = [key: string, delta: number]
export const TOTAL = 't'

export function emptyCounters (): Counters {
  return {
    calls: 0,
    successes: 0,
    errors: 0,
    rejected: 0,
    cancelled: 0,
    cacheHits: 0,
    cacheMisses: 0,
    timedCalls: 0,
    latencyMsSum: 0,
    llmCalls: 0,
    llmErrors: 0,
    inputTokens: 0,
    outputTokens: 0,
    costUsd: 0,
    streamsStarted: 0
  }
}

export type Outcome = 'success' | 'error' | 'rejected' | 'cancelled'

export function outcomeOf (record: InvocationRecord): Outcome {
  if (record.status === 'success') return 'success'
  if (record.status === 'cancelled') return 'cancelled'
  return record.error && REJECTION_CODES.has(record.error.code) ? 'rejected' : 'error'
}

/** Increments for one finished invocation, under the agent total and its method. */
export function invocationIncrements (record: InvocationRecord): Increment[] {
  const outcome = outcomeOf(record)
  const fields: Array<[CounterField, number]> = [['calls', 1]]
  if (outcome === 'success') fields.push(['successes', 1])
  else if (outcome === 'error') fields.push(['errors', 1])
  else if (outcome === 'rejected') fields.push(['rejected', 1])
  else fields.push(['cancelled', 1])
  if (outcome !== 'rejected') {
    fields.push(
      [record.cached ? 'cacheHits' : 'cacheMisses', 1],
      ['timedCalls', 1],
      ['latencyMsSum', record.durationMs]
    )
  }
  return fields.flatMap(([field, delta]): Increment[] => [
    [`${TOTAL}|${field}`, delta],
    [`m|${record.method}|${field}`, delta]
  ])
}

/** Increments for one provider call: tokens and cost are what the provider was actually asked to do. */
export function llmIncrements (record: LlmCallRecord): Increment[] {
  const fields: Array<[CounterField, number]> = [
    ['llmCalls', 1],
    ['inputTokens', record.usage.inputTokens],
    ['outputTokens', record.usage.outputTokens],
    ['costUsd', record.costUsd]
  ]
  if (record.status === 'error') fields.push(['llmErrors', 1])
  return fields.flatMap(([field, delta]): Increment[] => [
    [`${TOTAL}|${field}`, delta], [`m|${record.method}|${field}`, delta], [`model|${record.model}|${field}`, delta]
  ])
}

/** Parses flat keys back into totals, per-method and per-model counters. */
export function unflatten (entries: Iterable<[string, number]>) {
  const totals = emptyCounters()
  const methods = new Map<string, Counters>()
  const models = new Map<string, Counters>()
  for (const [key, value] of entries) {
    const first = key.indexOf('|')
    const last = key.lastIndexOf('|')
    if (first < 0) continue
    const scope = key.slice(0, first)
    const field = key.slice(last + 1)
    if (!isCounterField(field)) continue
    if (scope === TOTAL) { totals[field] += value; continue }
    const name = key.slice(first + 1, last)
    const map = scope === 'm' ? methods : scope === 'model' ? models : null
    if (!map) continue
    const counters = map.get(name) ?? emptyCounters()
    counters[field] += value
    map.set(name, counters)
  }
  return { totals, methods, models }
}

/** Nearest-rank percentile of an ascending sample (0 when empty). */
export function percentile (sorted: number[], p: number): number {
  if (sorted.length === 0) return 0
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]
}

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

/** Error codes that mean the request was refused before the agent worked on it: not agent errors. */
export const REJECTION_CODES: ReadonlySet<string> = new Set([
  'AMK_VALIDATION', 'AMK_BAD_REQUEST', 'AMK_NOT_FOUND', 'AMK_BUDGET_EXCEEDED', 'AMK_RATE_LIMITED',
  'AMK_UNAUTHORIZED', 'AMK_FORBIDDEN', 'AMK_TOO_MANY_STREAMS'
])

export type Increment = [key: string, delta: number]
export const TOTAL = 't'

export function emptyCounters (): Counters {
  return Object.fromEntries(COUNTER_FIELDS.map(f => [f, 0])) as Counters
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
    fields.push([record.cached ? 'cacheHits' : 'cacheMisses', 1], ['timedCalls', 1], ['latencyMsSum', record.durationMs])
  }
  return fields.flatMap(([field, delta]) => [[`${TOTAL}|${field}`, delta], [`m|${record.method}|${field}`, delta]] as Increment[])
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
  return fields.flatMap(([field, delta]) => [
    [`${TOTAL}|${field}`, delta], [`m|${record.method}|${field}`, delta], [`model|${record.model}|${field}`, delta]
  ] as Increment[])
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
    const field = key.slice(last + 1) as CounterField
    if (!(COUNTER_FIELDS as readonly string[]).includes(field)) continue
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

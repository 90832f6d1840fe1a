// Named aggregators of a hierarchical workflow. Clients pick one by name; the set is closed, so no
// client-sent code is ever evaluated. Each receives the master's and the sub-agents' step results.
import type { AggregatorName, StepResult } from './types.js'

export type Aggregator = (master: StepResult, subAgents: StepResult[]) => unknown

const keyOf = (step: StepResult, position: number) => step.id ?? `${position}`
const completed = (steps: StepResult[]) => steps.filter(s => s.status === 'completed')

/** Own enumerable properties copied with defineProperty, so a `__proto__` key in data stays data. */
function assignOwn (target: Record<string, unknown>, source: unknown): void {
  if (typeof source !== 'object' || source === null || Array.isArray(source)) return
  for (const [key, value] of Object.entries(source)) {
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true })
  }
}

export const AGGREGATORS: Record<AggregatorName, { description: string; aggregate: Aggregator }> = {
  collect: {
    description:
      "The master's data and every sub-agent's data, keyed by sub-agent id (or position); " +
      'failed sub-agents are listed with their error',
    aggregate (master, subAgents) {
      const results: Record<string, unknown> = {}
      const failed: Array<{ key: string; agent: string; method: string; status: string; error?: unknown }> = []
      subAgents.forEach((step, i) => {
        const key = keyOf(step, i)
        if (step.status === 'completed') {
          Object.defineProperty(results, key, {
            value: step.data,
            enumerable: true,
            writable: true,
            configurable: true
          })
        } else failed.push({ key, agent: step.agent, method: step.method, status: step.status, error: step.error })
      })
      return { master: master.data ?? null, results, failed }
    }
  },
  merge: {
    description:
      "One object: the master's fields, then each completed sub-agent's fields in order " +
      '(later keys win; non-object data is skipped)',
    aggregate (master, subAgents) {
      const merged: Record<string, unknown> = {}
      for (const step of completed([master, ...subAgents])) assignOwn(merged, step.data)
      return merged
    }
  },
  'master-summary': {
    description:
      "The master's data as the summary, sub-agent data as findings, and a one-line account of what completed",
    aggregate (master, subAgents) {
      const findings: Record<string, unknown> = {}
      subAgents.forEach((step, i) => {
        if (step.status === 'completed') {
          Object.defineProperty(findings, keyOf(step, i), {
            value: step.data,
            enumerable: true,
            writable: true,
            configurable: true
          })
        }
      })
      const done = completed(subAgents)
      const overview =
        `${master.agent}.${master.method} led; ${done.length} of ${subAgents.length} sub-agents completed` +
        (done.length ? `: ${done.map(s => `${s.agent}.${s.method}`).join(', ')}` : '')
      return { summary: master.data ?? null, findings, overview }
    }
  }
}

export const AGGREGATOR_NAMES = Object.keys(AGGREGATORS) as AggregatorName[]
export const DEFAULT_AGGREGATOR: AggregatorName = 'collect'

export function isAggregatorName (name: unknown): name is AggregatorName {
  return typeof name === 'string' && Object.hasOwn(AGGREGATORS, name)
}

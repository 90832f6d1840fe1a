// The price table (USD per 1M input / output tokens) and the cost of one call. One table for the whole
// service; LLM_PRICING (JSON) overrides or adds models. Unknown models are priced by the longest known
// prefix (gemini-2.5-pro-preview-… → gemini-2.5-pro), else at zero — such a model is unpriced: named at
// boot and in /api/health (unpriced()), and refused under a dollar budget.
import { Type } from 'typebox'
import { Value } from 'typebox/value'
import type { Usage } from './types.js'

export interface ModelPrice { input: number, output: number }

/** Public list prices (standard tier, prompts ≤ 200k tokens) as of 2025. */
export const DEFAULT_PRICES: Readonly<Record<string, ModelPrice>> = {
  'gemini-2.5-pro': { input: 1.25, output: 10 },
  'gemini-2.5-flash': { input: 0.30, output: 2.50 },
  'gemini-2.5-flash-lite': { input: 0.10, output: 0.40 },
  'gemini-2.0-flash': { input: 0.10, output: 0.40 },
  'gemini-2.0-flash-lite': { input: 0.075, output: 0.30 },
  'gemini-1.5-pro': { input: 1.25, output: 5 },
  'gemini-1.5-flash': { input: 0.075, output: 0.30 },
  'gpt-4o-mini': { input: 0.15, output: 0.60 },
  'gpt-4o': { input: 2.50, output: 10 },
  offline: { input: 0, output: 0 }
}

const OverrideSchema = Type.Record(Type.String({ minLength: 1 }), Type.Object({
  input: Type.Number({ minimum: 0 }),
  output: Type.Number({ minimum: 0 })
}))

export interface Pricing {
  readonly table: Readonly<Record<string, ModelPrice>>
  /** The price entry used for a model (exact, then longest prefix), or undefined. */
  lookup(model: string): ModelPrice | undefined
  isKnown(model: string): boolean
  /** The models of the list that have no price (deduplicated, in order). */
  unpriced(models: Iterable<string>): string[]
  /** Cost of one call in USD, rounded to 1e-8 (the ledger's precision). */
  cost(model: string, usage: Pick<Usage, 'inputTokens' | 'outputTokens'>): number
}

/** Parses LLM_PRICING; throws with a readable message when the JSON has the wrong shape. */
export function parsePricingOverride (json: string | undefined): Record<string, ModelPrice> {
  if (!json) return {}
  const value: unknown = JSON.parse(json)
  if (!Value.Check(OverrideSchema, value)) {
    const first = [...Value.Errors(OverrideSchema, value)][0]
    throw new Error(
      'LLM_PRICING must be {"model":{"input":n,"output":n}}: ' +
        `${first?.instancePath || '/'} ${first?.message ?? 'is invalid'}`
    )
  }
  return value
}

export function createPricing (override?: string): Pricing {
  const table: Record<string, ModelPrice> = { ...DEFAULT_PRICES, ...parsePricingOverride(override) }
  const byLength = Object.keys(table).sort((a, b) => b.length - a.length)
  const memo = new Map<string, ModelPrice | undefined>()

  function lookup (model: string): ModelPrice | undefined {
    if (memo.has(model)) return memo.get(model)
    const key = table[model] ? model : byLength.find(name => model.startsWith(name))
    const price = key ? table[key] : undefined
    memo.set(model, price)
    return price
  }

  return {
    table,
    lookup,
    isKnown: (model) => lookup(model) !== undefined,
    unpriced: (models) => [...new Set(models)].filter(model => lookup(model) === undefined),
    cost (model, usage) {
      const price = lookup(model)
      if (!price) return 0
      const usd = (usage.inputTokens * price.input + usage.outputTokens * price.output) / 1_000_000
      return Math.round(usd * 1e8) / 1e8
    }
  }
}

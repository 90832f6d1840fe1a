// Daily token and dollar budgets (DESIGN §12), wired into the agent service: before every LLM call the
// estimate is reserved (atomically in Redis when up, else in this process's memory, with the same
// failover as the rate limits) and after it the reservation is settled with the real usage. A spent
// budget refuses the call with 429 AMK_BUDGET_EXCEEDED before it reaches the provider. A dollar budget
// cannot count a model without a price, so it refuses such calls with 422 AMK_MODEL_UNPRICED (issue 12).
import fp from 'fastify-plugin'
import { BudgetExceededError, UnpricedModelError, withDetails } from '../errors.js'
import { Budgets, parseBudgets, type BudgetRejection, type DailyBudget } from '../limits/budgets.js'
import { MemoryBudgetCounter, RedisBudgetCounter } from '../limits/budget-counter.js'

declare module 'fastify' {
  interface FastifyInstance {
    budgets: Budgets
  }
}

function message (rejection: BudgetRejection): string {
  const amount = (value: number) => rejection.dimension === 'usd' ? `$${value.toFixed(4)}` : `${value} tokens`
  return `Daily ${rejection.dimension === 'usd' ? 'dollar' : 'token'} budget spent: ` +
    `${amount(rejection.used)} of ${amount(rejection.limit)} used today; it resets at ${rejection.resetsAt}`
}

export default fp(async function budgets (app) {
  const cacheTtlMs = app.config.API_KEY_CACHE_TTL_MS
  const keyCache = new Map<string, { at: number, budget: DailyBudget | null }>()

  async function keyBudget (keyId: string): Promise<DailyBudget | null> {
    const cached = keyCache.get(keyId)
    if (cached && Date.now() - cached.at < cacheTtlMs) return cached.budget
    const budget = await app.auth.apiKeys.budgetOf(keyId)
    if (keyCache.size > 10_000) keyCache.clear()
    keyCache.set(keyId, { at: Date.now(), budget })
    return budget
  }

  const service = new Budgets({
    failover: app.limiter.failover,
    redisCounter: app.redis ? new RedisBudgetCounter(app.redis, app.config.REDIS_KEY_PREFIX) : null,
    memoryCounter: new MemoryBudgetCounter(),
    roleBudgets: parseBudgets(app.config.BUDGETS),
    keyBudget,
    // The ledger's totals include this replica's queued rows ('behind', and 'durable' behind the PGlite journal).
    ledgerTotals: async (callerId, since) => {
      const totals = await app.usageLedger.totals(callerId, since)
      return { tokens: totals.inputTokens + totals.outputTokens, usd: totals.costUsd }
    }
  })
  app.decorate('budgets', service)
  const rejections = app.meters.counter(
    'budget_rejections_total',
    'LLM calls refused because a daily budget was spent, by dimension',
    ['dimension']
  )
  for (const dimension of ['tokens', 'usd']) rejections.inc({ dimension }, 0)

  app.agents.addHooks({
    async beforeLlmCall (call) {
      if (!call.caller) return
      if (!app.llm.pricing.isKnown(call.model) && (await service.limitsFor(call.caller))?.usd != null) {
        rejections.inc({ dimension: 'usd' })
        throw withDetails(
          new UnpricedModelError(
            `The model ${call.model} has no price, so your dollar budget cannot be enforced; ` +
              'an operator can price it with LLM_PRICING'
          ),
          { scope: 'budget', dimension: 'usd', model: call.model }
        )
      }
      const result = await service.reserve(call.caller, {
        tokens: call.estimatedTokens,
        costUsd: call.estimatedCostUsd
      })
      if (result.ok) return result.hold ?? undefined
      const { rejection } = result
      rejections.inc({ dimension: rejection.dimension })
      throw withDetails(new BudgetExceededError(message(rejection)), rejection, {
        'retry-after': String(rejection.retryAfterSeconds)
      })
    }
  })
}, {
  name: 'budgets',
  dependencies: ['config', 'store', 'metrics', 'auth', 'rate-limit', 'llm', 'usage-ledger', 'agents']
})

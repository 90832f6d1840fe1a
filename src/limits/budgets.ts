// Daily token and dollar budgets per caller, framework-free. Limits come from the caller's role (BUDGETS)
// and, for API keys, the key's own columns (which win per dimension). Before an LLM call the estimate is
// reserved (Redis when up, else this process's memory); after it the reservation is settled with the
// real usage. Days are UTC; counters are keyed per caller per day.
import type { Caller } from '../auth/roles.js'
import { parseBudgets, type DailyBudget, type RoleBudgets } from '../config/limits.js'
import type { Amount, BudgetCounter, Dimension, Limits } from './budget-counter.js'
import type { RedisFailover } from './redis-failover.js'

export { parseBudgets, type DailyBudget, type RoleBudgets }

export const MICRO = 1_000_000

/** Start of the UTC day containing `now`, and the next one (when budgets reset). */
export function utcDay (now: number): { day: string, start: Date, resetsAt: Date } {
  const start = new Date(now)
  start.setUTCHours(0, 0, 0, 0)
  return { day: start.toISOString().slice(0, 10), start, resetsAt: new Date(start.getTime() + 86_400_000) }
}

export interface BudgetRejection {
  scope: 'budget'
  dimension: Dimension
  limit: number
  used: number
  requested: number
  resetsAt: string
  retryAfterSeconds: number
}

/**
 * A reservation until its call settles: an open stream holds it for its whole life, so it is one small
 * object, not closures over reserve()'s locals (those kept its limits, estimate and a bound copy, about
 * 0.4 KB per stream). `release` settles it with the real usage, once.
 */
export class BudgetHold {
  #released = false

  constructor (
    private readonly counter: BudgetCounter,
    private readonly key: string,
    private readonly reserved: Amount
  ) {}

  async release (actual: { tokens: number, costUsd: number }): Promise<void> {
    if (this.#released) return
    this.#released = true
    await this.counter.adjust(this.key, {
      tokens: actual.tokens - Math.ceil(this.reserved.tokens),
      microUsd: actual.costUsd * MICRO - Math.ceil(this.reserved.microUsd)
    })
  }
}

/** `hold` is null when no budget applies to the caller. */
export type ReserveResult =
  | { ok: true, hold: BudgetHold | null }
  | { ok: false, rejection: BudgetRejection }

export interface BudgetDeps {
  failover: RedisFailover
  redisCounter: BudgetCounter | null
  memoryCounter: BudgetCounter
  roleBudgets: RoleBudgets
  /** The key's own budget columns (null columns = not set), or null when unknown. */
  keyBudget(keyId: string): Promise<DailyBudget | null>
  /** Tokens and dollars the usage ledger holds for the caller since `since`. */
  ledgerTotals(callerId: string, since: Date): Promise<{ tokens: number, usd: number }>
  now?: () => number
}

export class Budgets {
  private readonly now: () => number

  constructor (private readonly deps: BudgetDeps) {
    this.now = deps.now ?? Date.now
  }

  /** The caller's daily limits; null when no budget applies. */
  async limitsFor (caller: Caller): Promise<{ tokens: number | null; usd: number | null } | null> {
    const role = this.deps.roleBudgets[caller.role] ?? {}
    const key = caller.keyId ? await this.deps.keyBudget(caller.keyId) : null
    const tokens = key?.tokens ?? role.tokens ?? null
    const usd = key?.usd ?? role.usd ?? null
    return tokens === null && usd === null ? null : { tokens, usd }
  }

  /** Runs `use` on the Redis counter, or the memory one while Redis is unusable; with the counter used. */
  private async onCounter<T>(
    use: (counter: BudgetCounter) => Promise<T>
  ): Promise<{ counter: BudgetCounter; result: T }> {
    const { failover, redisCounter, memoryCounter } = this.deps
    const on = async (counter: BudgetCounter) => ({ counter, result: await use(counter) })
    return redisCounter
      ? failover.run(
        () => on(redisCounter),
        () => on(memoryCounter)
      )
      : on(memoryCounter)
  }

  async reserve (caller: Caller, estimate: { tokens: number; costUsd: number }): Promise<ReserveResult> {
    const limits = await this.limitsFor(caller)
    if (!limits) return { ok: true, hold: null }
    const now = this.now()
    const { day, start, resetsAt } = utcDay(now)
    const key = `budget:${caller.id}:${day}`
    const ttl = Math.ceil((resetsAt.getTime() - now) / 1000) + 3600
    const amount: Amount = { tokens: Math.max(0, estimate.tokens), microUsd: Math.max(0, estimate.costUsd) * MICRO }
    const counterLimits: Limits = { tokens: limits.tokens, microUsd: limits.usd === null ? null : limits.usd * MICRO }

    let reserved = await this.onCounter(c => c.reserve(key, amount, counterLimits, ttl))
    if ('needsSeed' in reserved.result) {
      const totals = await this.deps.ledgerTotals(caller.id, start)
      const seed = { tokens: totals.tokens, microUsd: totals.usd * MICRO }
      reserved = await this.onCounter(c => c.reserve(key, amount, counterLimits, ttl, seed))
    }
    const { counter: used, result } = reserved
    if ('needsSeed' in result) throw new Error('budget counter could not be seeded')
    if (result.ok) return { ok: true, hold: new BudgetHold(used, key, amount) }
    const dimension = result.dimension
    const scale = dimension === 'usd' ? MICRO : 1
    return {
      ok: false,
      rejection: {
        scope: 'budget',
        dimension,
        limit: (dimension === 'usd' ? limits.usd : limits.tokens) ?? 0,
        used: (dimension === 'usd' ? result.committed.microUsd : result.committed.tokens) / scale,
        requested: dimension === 'usd' ? estimate.costUsd : estimate.tokens,
        resetsAt: resetsAt.toISOString(),
        retryAfterSeconds: Math.ceil((resetsAt.getTime() - now) / 1000)
      }
    }
  }

  /** Today's limits for a caller and when they reset (for GET /api/usage/me). */
  async today (
    caller: Caller
  ): Promise<{
    limits: { tokens: number | null; usd: number | null } | null
    day: string
    resetsAt: string
    since: Date
  }> {
    const { day, start, resetsAt } = utcDay(this.now())
    return { limits: await this.limitsFor(caller), day, resetsAt: resetsAt.toISOString(), since: start }
  }
}

// Daily budget counters, framework-free. One counter per caller per UTC day holds what is committed:
// tokens and micro-dollars already used plus reservations still in flight. `reserve` admits a call while
// the committed amount is below the limit and adds its estimate in the same atomic step (a Lua script in
// Redis, a synchronous step in memory), so concurrent calls see each other's reservations and the day
// ends at most one call past the limit. (A strict committed + estimate ≤ limit check would refuse every
// call whose pessimistic estimate — the agent service assumes 2,048 output tokens — exceeds what is
// left, though most calls use far less.) `adjust` settles a reservation with the real usage. A counter
// that does not exist yet (new day, Redis restarted, new process) is seeded from the usage ledger first.
import type { Redis } from 'ioredis'
import { defineScript, reply } from '../store/redis-script.js'

export interface Amount { tokens: number, microUsd: number }
/** Daily limits; null = unlimited in that dimension. */
export interface Limits { tokens: number | null, microUsd: number | null }
export type Dimension = 'tokens' | 'usd'

export type ReserveOutcome =
  | { ok: true, committed: Amount }
  | { ok: false, committed: Amount, dimension: Dimension }
  | { ok: false, needsSeed: true }

export interface BudgetCounter {
  reserve(key: string, amount: Amount, limits: Limits, ttlSeconds: number, seed?: Amount): Promise<ReserveOutcome>
  adjust(key: string, delta: Amount): Promise<void>
  read(key: string): Promise<Amount | null>
}

// KEYS[1] counter hash; ARGV: tokens, microUsd, token limit (-1 = none), usd limit (-1 = none), ttl,
// seed tokens, seed microUsd ('' = no seed given). Returns {status, tokens, microUsd}: 1 reserved,
// 0 over the token limit, 2 over the dollar limit, -1 the counter must be seeded first.
const RESERVE = defineScript({
  name: 'budget reserve',
  keys: 1,
  parse: reply.triple,
  lua: `
local key = KEYS[1]
if redis.call('EXISTS', key) == 0 then
  if ARGV[6] == '' then return {-1, 0, 0} end
  redis.call('HSET', key, 'tokens', ARGV[6], 'usd', ARGV[7])
  redis.call('EXPIRE', key, tonumber(ARGV[5]))
end
local tokens = tonumber(redis.call('HGET', key, 'tokens') or '0')
local usd = tonumber(redis.call('HGET', key, 'usd') or '0')
local addTokens, addUsd = tonumber(ARGV[1]), tonumber(ARGV[2])
local tokenLimit, usdLimit = tonumber(ARGV[3]), tonumber(ARGV[4])
if tokenLimit >= 0 and tokens >= tokenLimit then return {0, tokens, usd} end
if usdLimit >= 0 and usd >= usdLimit then return {2, tokens, usd} end
tokens = redis.call('HINCRBY', key, 'tokens', addTokens)
usd = redis.call('HINCRBY', key, 'usd', addUsd)
return {1, tokens, usd}
`
})

// Settles only a counter that still exists: a vanished one is re-seeded from the ledger on next use.
const ADJUST = defineScript({
  name: 'budget adjust',
  keys: 1,
  parse: reply.integer,
  lua: `
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HINCRBY', KEYS[1], 'tokens', ARGV[1])
  redis.call('HINCRBY', KEYS[1], 'usd', ARGV[2])
end
return 1
`
})

function outcome (status: number, committed: Amount): ReserveOutcome {
  if (status === -1) return { ok: false, needsSeed: true }
  if (status === 1) return { ok: true, committed }
  return { ok: false, committed, dimension: status === 2 ? 'usd' : 'tokens' }
}

const limitArg = (value: number | null) => value === null ? -1 : Math.floor(value)

export class RedisBudgetCounter implements BudgetCounter {
  constructor (
    private readonly redis: Redis,
    private readonly prefix: string
  ) {}

  async reserve (
    key: string,
    amount: Amount,
    limits: Limits,
    ttlSeconds: number,
    seed?: Amount
  ): Promise<ReserveOutcome> {
    const [status, tokens, microUsd] = await RESERVE(
      this.redis,
      [this.prefix + key],
      [
        Math.ceil(amount.tokens),
        Math.ceil(amount.microUsd),
        limitArg(limits.tokens),
        limitArg(limits.microUsd),
        ttlSeconds,
        seed ? Math.round(seed.tokens) : '',
        seed ? Math.round(seed.microUsd) : ''
      ]
    )
    return outcome(status, { tokens, microUsd })
  }

  async adjust (key: string, delta: Amount): Promise<void> {
    await ADJUST(this.redis, [this.prefix + key], [Math.round(delta.tokens), Math.round(delta.microUsd)])
  }

  async read (key: string): Promise<Amount | null> {
    const values = await this.redis.hmget(this.prefix + key, 'tokens', 'usd')
    if (values[0] === null) return null
    return { tokens: Number(values[0]), microUsd: Number(values[1] ?? 0) }
  }
}

/** Per-process counters; entries expire like the Redis ones. */
export class MemoryBudgetCounter implements BudgetCounter {
  private readonly counters = new Map<string, Amount & { expiresAt: number }>()

  private live (key: string): (Amount & { expiresAt: number }) | undefined {
    const entry = this.counters.get(key)
    if (entry && entry.expiresAt <= Date.now()) {
      this.counters.delete(key)
      return undefined
    }
    return entry
  }

  async reserve (
    key: string,
    amount: Amount,
    limits: Limits,
    ttlSeconds: number,
    seed?: Amount
  ): Promise<ReserveOutcome> {
    let entry = this.live(key)
    if (!entry) {
      if (!seed) return outcome(-1, { tokens: 0, microUsd: 0 })
      entry = {
        tokens: Math.round(seed.tokens),
        microUsd: Math.round(seed.microUsd),
        expiresAt: Date.now() + ttlSeconds * 1000
      }
      this.counters.set(key, entry)
      for (const [other] of this.counters) if (other !== key) this.live(other)
    }
    const committed = { tokens: entry.tokens, microUsd: entry.microUsd }
    const add = { tokens: Math.ceil(amount.tokens), microUsd: Math.ceil(amount.microUsd) }
    if (limits.tokens !== null && committed.tokens >= limits.tokens) return outcome(0, committed)
    if (limits.microUsd !== null && committed.microUsd >= limits.microUsd) return outcome(2, committed)
    entry.tokens += add.tokens
    entry.microUsd += add.microUsd
    return outcome(1, { tokens: entry.tokens, microUsd: entry.microUsd })
  }

  async adjust (key: string, delta: Amount): Promise<void> {
    const entry = this.live(key)
    if (!entry) return
    entry.tokens += Math.round(delta.tokens)
    entry.microUsd += Math.round(delta.microUsd)
  }

  async read (key: string): Promise<Amount | null> {
    const entry = this.live(key)
    return entry ? { tokens: entry.tokens, microUsd: entry.microUsd } : null
  }
}

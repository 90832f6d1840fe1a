// The per-caller stream cap across every replica: one Redis sorted set per caller whose members are the
// slots held (one per open stream or detached generation) and whose scores are lease expiries in Redis'
// own clock. Taking a slot drops the lapsed ones and counts the rest in one script, so concurrent
// requests on different replicas cannot both take the last slot. Slots are renewed while held; a
// replica that dies stops renewing and its slots lapse after leaseMs. A slot is named by its stream and
// its holder (this object), so every holder of one stream here (its generation, its connections) shares
// one slot, and a resume takes over the slot its stream still holds elsewhere (a dead replica's, before
// it lapses) instead of needing a new one; the old holder's release then finds nothing to remove. A
// replica shutting down gives back all its slots at once (releaseAll) before telling its clients to
// resume elsewhere. While Redis cannot answer, the per-process cap alone applies (a degraded Redis must
// not stop streaming).
import { randomBytes } from 'node:crypto'
import type { Redis } from 'ioredis'
import { breakerFor } from '../limits/redis-failover.js'
import { defineScript, reply } from '../store/redis-script.js'

/** Redis calls go through the Redis circuit breaker: while it is open, slots are granted at once. */
const COMPONENT = 'stream slots'

// Redis' own clock in ms, so replicas with skewed clocks agree on lease expiries.
const NOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

// KEYS[1] the caller's set; ARGV: max, leaseMs, member (<stream>|<holder>), takeOver, '<stream>|'.
// 1 = taken, 0 = the caller is at max, 2 = taken over: takeOver = 1 and another holder (a replica that is
// dead or going) still held the stream's slot, which becomes ours without counting again. The set holds
// at most max members, so the scan is short.
const ACQUIRE = defineScript({
  name: 'stream slot acquire',
  keys: 1,
  parse: reply.integer,
  lua: `${NOW}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local taken = 1
if ARGV[4] == '1' then
  local prefix = ARGV[5]
  for _, held in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    if string.sub(held, 1, #prefix) == prefix then
      redis.call('ZREM', KEYS[1], held)
      taken = 2
    end
  end
end
if taken == 1 and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return taken
`
})

// KEYS[1] the caller's set; ARGV: leaseMs, member, register. Extends a slot still held (XX: never re-adds a
// lapsed one); register = 1 adds a slot granted while Redis could not answer, so it counts across replicas again.
const RENEW = defineScript({
  name: 'stream slot renew',
  keys: 1,
  parse: reply.integer,
  lua: `${NOW}
if ARGV[3] == '1' then redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[2])
else redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), ARGV[2]) end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]))
return 1
`
})

export interface SharedSlotsOptions {
  redis: Redis
  keyPrefix: string
  leaseMs: number
  onError?: (error: Error) => void
}

export interface SlotRequest {
  /** The stream the slot is for (default: a slot of its own). */
  streamId?: string
  /** A resume: take over the stream's slot if it is still held anywhere, without counting it again. */
  takeOver?: boolean
}

export class SharedCallerSlots {
  /** slot member → the caller's set key and how many holders here share it, for renewal. */
  private readonly held = new Map<string, { key: string, holders: number, unregistered?: boolean }>()
  private readonly timer: NodeJS.Timeout
  /** Names this holder in slot members, so a take-over elsewhere is not undone by our release. */
  private readonly holder = randomBytes(6).toString('hex')

  constructor (private readonly options: SharedSlotsOptions) {
    const renew = () => { this.renew().catch(error => this.report(error)) }
    this.timer = setInterval(renew, Math.max(1, Math.floor(options.leaseMs / 3)))
    this.timer.unref()
    breakerFor(options.redis).onSwitch(to => { if (to === 'redis') renew() })
  }

  private report (error: unknown): void {
    this.options.onError?.(error instanceof Error ? error : new Error(String(error)))
  }

  private key (callerId: string): string {
    return `${this.options.keyPrefix}stream-slots:${callerId}`
  }

  /**
   * Takes a slot for the caller: its release function, or null when the caller already holds `max` across
   * the replicas. A stream already holding a slot here shares it. When Redis cannot answer, the slot is
   * granted (the process cap still holds).
   */
  async acquire (callerId: string, max: number, request: SlotRequest = {}): Promise<(() => Promise<void>) | null> {
    const key = this.key(callerId)
    const stream = request.streamId ?? randomBytes(8).toString('hex')
    const member = `${stream}|${this.holder}`
    const here = this.held.get(member)
    if (here) {
      here.holders++
    } else {
      // While Redis cannot answer the slot is granted and held unregistered: the next renewal after the
      // breaker closes adds it to the shared set, so the cap counts it across replicas again.
      const breaker = breakerFor(this.options.redis)
      let unregistered = !breaker.usable()
      const started = performance.now()
      try {
        const args = [max, this.options.leaseMs, member, request.takeOver ? 1 : 0, `${stream}|`]
        if (!unregistered && await ACQUIRE(this.options.redis, [key], args) === 0) return null
      } catch (error) {
        breaker.failure(COMPONENT, error, started) // once it is open, no further acquire reaches Redis (or fails)
        this.report(error)
        unregistered = true
      }
      const raced = this.held.get(member) // another holder here took it while we waited
      if (raced) raced.holders++
      else this.held.set(member, { key, holders: 1, unregistered })
    }
    let released = false
    // Resolves once the slot is given back (callers need not wait; it never rejects).
    return async () => {
      const slot = this.held.get(member)
      if (released || !slot) return
      released = true
      if (--slot.holders > 0) return
      this.held.delete(member)
      await breakerFor(this.options.redis).fire(COMPONENT, redis => redis.zrem(key, member))
    }
  }

  /** Gives back every slot held here at once (shutdown: before clients are told to resume elsewhere). */
  async releaseAll (): Promise<number> {
    const slots = [...this.held]
    this.held.clear()
    if (slots.length === 0) return 0
    const pipeline = this.options.redis.pipeline()
    for (const [member, { key }] of slots) pipeline.zrem(key, member)
    await pipeline.exec().catch(error => this.report(error))
    return slots.length
  }

  private async renew (): Promise<void> {
    const breaker = breakerFor(this.options.redis)
    if (this.held.size === 0 || !breaker.usable()) return
    const started = performance.now()
    const pipeline = this.options.redis.pipeline()
    const slots = [...this.held.values()]
    for (const [member, { key, unregistered }] of this.held) {
      RENEW.queue(pipeline, [key], [this.options.leaseMs, member, unregistered ? 1 : 0])
    }
    await pipeline.exec().then(
      () => { for (const slot of slots) slot.unregistered = false },
      error => { if (!breaker.failure(COMPONENT, error, started)) throw error })
  }

  close (): void {
    clearInterval(this.timer)
  }
}

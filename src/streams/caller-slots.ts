// The per-caller stream cap across every replica: one Redis sorted set per caller whose members are the
// slots held (one per open stream or detached generation) and whose scores are lease expiries in Redis'
// own clock. Taking a slot drops the lapsed ones and counts the rest in one script, so concurrent
// requests on different replicas cannot both take the last slot. Slots are renewed while held; a
// replica that dies stops renewing and its slots lapse after leaseMs. While Redis cannot answer, the
// per-process cap alone applies (a degraded Redis must not stop streaming).
import { randomBytes } from 'node:crypto'
import type { Redis } from 'ioredis'

// Redis' own clock in ms, so replicas with skewed clocks agree on lease expiries.
const NOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

// KEYS[1] the caller's set; ARGV: max, leaseMs, member. 1 = taken, 0 = the caller is at max.
const ACQUIRE = `${NOW}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
`

// KEYS[1] the caller's set; ARGV: leaseMs, member. Extends a slot still held (XX: never re-adds a lapsed one).
const RENEW = `${NOW}
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), ARGV[2])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]))
return 1
`

export interface SharedSlotsOptions {
  redis: Redis
  keyPrefix: string
  leaseMs: number
  onError?: (error: Error) => void
}

type Commands = Record<'amkSlotAcquire' | 'amkSlotRenew', (key: string, ...args: Array<string | number>) => Promise<number>>

export class SharedCallerSlots {
  /** slot member → the caller's set key, for renewal. */
  private readonly held = new Map<string, string>()
  private readonly timer: NodeJS.Timeout

  constructor (private readonly options: SharedSlotsOptions) {
    if (!('amkSlotAcquire' in options.redis)) {
      options.redis.defineCommand('amkSlotAcquire', { numberOfKeys: 1, lua: ACQUIRE })
      options.redis.defineCommand('amkSlotRenew', { numberOfKeys: 1, lua: RENEW })
    }
    this.timer = setInterval(() => { this.renew().catch(error => this.options.onError?.(error as Error)) }, Math.max(1, Math.floor(options.leaseMs / 3)))
    this.timer.unref()
  }

  private get commands (): Commands {
    return this.options.redis as unknown as Commands
  }

  private key (callerId: string): string {
    return `${this.options.keyPrefix}stream-slots:${callerId}`
  }

  /**
   * Takes a slot for the caller: its release function, or null when the caller already holds `max` across
   * the replicas. When Redis cannot answer, the slot is granted (the process cap still holds).
   */
  async acquire (callerId: string, max: number): Promise<(() => Promise<void>) | null> {
    const key = this.key(callerId)
    const member = randomBytes(8).toString('hex')
    try {
      if (await this.commands.amkSlotAcquire(key, max, this.options.leaseMs, member) !== 1) return null
    } catch (error) {
      this.options.onError?.(error as Error)
      return async () => {}
    }
    this.held.set(member, key)
    // Resolves once the slot is given back (callers need not wait; it never rejects).
    return async () => {
      if (!this.held.delete(member)) return
      await this.options.redis.zrem(key, member).catch(error => this.options.onError?.(error as Error))
    }
  }

  private async renew (): Promise<void> {
    if (this.held.size === 0) return
    const pipeline = this.options.redis.pipeline() as unknown as Commands & { exec(): Promise<unknown> }
    for (const [member, key] of this.held) pipeline.amkSlotRenew(key, this.options.leaseMs, member)
    await pipeline.exec()
  }

  close (): void {
    clearInterval(this.timer)
  }
}

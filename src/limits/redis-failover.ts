// Chooses between Redis (shared across replicas) and a per-process fallback for each operation.
// Redis is used while its client is `ready`; an error (including the client's command timeout) switches
// to the fallback for `retryMs`, after which the next operation probes Redis again. So no operation
// waits on Redis longer than one command timeout, and the shared state is used again once Redis is back.
import type { Redis } from 'ioredis'

export type Backend = 'redis' | 'memory'

export interface FailoverEvents {
  /** Called on every switch: to 'memory' with the reason, back to 'redis' when it answers again. */
  onSwitch?(to: Backend, reason: string): void
}

export class RedisFailover {
  private downUntil = 0
  private current: Backend
  private switchedAt = Date.now()
  private lastError = ''

  constructor (readonly redis: Redis | null, private readonly retryMs: number, private readonly events: FailoverEvents = {}) {
    this.current = redis ? 'redis' : 'memory'
  }

  /** Whether the next operation should go to Redis. */
  usable (): boolean {
    if (!this.redis) return false
    if (this.redis.status !== 'ready') {
      this.down(`redis ${this.redis.status}`)
      return false
    }
    return Date.now() >= this.downUntil
  }

  /** Runs `onRedis`, or `onMemory` when Redis is unusable or the Redis call fails. */
  async run<T> (onRedis: (redis: Redis) => Promise<T>, onMemory: () => T | Promise<T>): Promise<T> {
    if (!this.usable()) return onMemory()
    try {
      const result = await onRedis(this.redis!)
      this.up()
      return result
    } catch (error) {
      this.down((error as Error).message)
      this.downUntil = Date.now() + this.retryMs
      return onMemory()
    }
  }

  /** What is in use now, since when, and why (for /api/health). */
  state (): { backend: Backend, since: number, reason: string, configured: boolean } {
    return { backend: this.current, since: this.switchedAt, reason: this.lastError, configured: this.redis !== null }
  }

  private down (reason: string): void {
    this.lastError = reason
    if (this.current === 'memory') return
    this.current = 'memory'
    this.switchedAt = Date.now()
    this.events.onSwitch?.('memory', reason)
  }

  private up (): void {
    if (this.current === 'redis') return
    this.current = 'redis'
    this.switchedAt = Date.now()
    this.lastError = ''
    this.events.onSwitch?.('redis', 'redis answered again')
  }
}

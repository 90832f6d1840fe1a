// The store behind @fastify/rate-limit, written to the plugin's documented store interface (`incr`,
// `child`): fixed windows counted in Redis (one Lua call per request, shared by every replica), or in this
// process's memory while the Redis circuit breaker is open (see redis-failover.ts). Keys carry the scope,
// so one store serves every scope and every route: `child()` returns the same counters.
import type { FastifyRateLimitStore, FastifyRateLimitStoreCtor } from '@fastify/rate-limit'
import type { Redis } from 'ioredis'
import { defineScript, reply } from '../store/redis-script.js'
import type { RedisFailover } from './redis-failover.js'

export interface WindowCount {
  /** Requests counted in the window, this one included. */
  current: number
  /** Milliseconds until the window ends. */
  ttl: number
}
type IncrCallback = (error: Error | null, result?: WindowCount) => void

/** Windows the in-memory fallback keeps (the least recently counted are dropped first). */
export const LOCAL_CACHE_SIZE = 50_000

// KEYS[1] the counter; ARGV[1] the window (ms). Counts the request; the first one of a window starts its
// expiry. Returns {current, ttl}.
const INCR = defineScript({
  name: 'rate limit',
  keys: 1,
  parse: reply.pair,
  lua: `local current = redis.call('INCR', KEYS[1])
if current == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  return {current, tonumber(ARGV[1])}
end
return {current, redis.call('PTTL', KEYS[1])}`
})

/** Windows in Redis under `keyPrefix`. */
export class RedisWindows {
  constructor (private readonly redis: Redis, private readonly keyPrefix: string) {}

  async incr (key: string, timeWindow: number): Promise<WindowCount> {
    const [current, ttl] = await INCR(this.redis, [this.keyPrefix + key], [timeWindow])
    return { current, ttl }
  }
}

/** Windows in this process: a Map in least-recently-counted order, at most `capacity` entries. */
export class LocalWindows {
  private readonly windows = new Map<string, { current: number, startedAt: number }>()

  constructor (private readonly capacity = LOCAL_CACHE_SIZE) {}

  incr (key: string, timeWindow: number, now = Date.now()): WindowCount {
    let window = this.windows.get(key)
    if (!window || window.startedAt + timeWindow <= now) window = { current: 0, startedAt: now }
    window.current++
    this.windows.delete(key) // re-inserted last: the Map's order is the order of use
    this.windows.set(key, window)
    for (const oldest of this.windows.keys()) {
      if (this.windows.size <= this.capacity) break
      this.windows.delete(oldest)
    }
    return { current: window.current, ttl: timeWindow - (now - window.startedAt) }
  }

  get size (): number {
    return this.windows.size
  }
}

export class FailoverLimiterStore implements FastifyRateLimitStore {
  private readonly local = new LocalWindows()
  private readonly shared: RedisWindows | null

  constructor (private readonly failover: RedisFailover, keyPrefix: string) {
    this.shared = failover.redis ? new RedisWindows(failover.redis, keyPrefix) : null
  }

  /** Counts a request in its window (the plugin also passes the max, which a fixed window does not need). */
  incr (key: string, callback: IncrCallback, timeWindow: number): void {
    const { shared, local } = this
    const counted = shared
      ? this.failover.run(() => shared.incr(key, timeWindow), () => local.incr(key, timeWindow), 'rate limits')
      : Promise.resolve(local.incr(key, timeWindow))
    counted.then(
      result => callback(null, result),
      (error: unknown) => callback(error instanceof Error ? error : new Error(String(error)))
    )
  }

  child (): FastifyRateLimitStore {
    return this
  }

  /** A constructor bound to this app's failover and key prefix, as the plugin's `store` option expects. */
  static bound (failover: RedisFailover, keyPrefix: string): FastifyRateLimitStoreCtor {
    return class BoundFailoverStore extends FailoverLimiterStore {
      constructor () {
        super(failover, keyPrefix)
      }
    }
  }
}

// A store for @fastify/rate-limit that counts in Redis (the plugin's own RedisStore: one Lua call per
// request, a fixed window shared by every replica) and falls back to the plugin's LocalStore while the
// Redis circuit breaker is open (see redis-failover.ts). Keys carry the scope, so one store serves
// every scope and every route: `child()` returns the same counters.
import { createRequire } from 'node:module'
import type { FastifyRateLimitStore, FastifyRateLimitStoreCtor } from '@fastify/rate-limit'
import type { Redis } from 'ioredis'
import type { RedisFailover } from './redis-failover.js'

type IncrResult = { current: number, ttl: number }
type IncrCallback = (error: Error | null, result?: IncrResult) => void

interface PluginStore {
  incr(key: string, cb: IncrCallback, timeWindow: number, max: number): void
}

const require = createRequire(import.meta.url)
// The plugin exports its stores only as files; they are plain constructors.
const RedisStore = require('@fastify/rate-limit/store/RedisStore') as new (continueExceeding: boolean, exponentialBackoff: boolean, redis: Redis, key: string) => PluginStore
const LocalStore = require('@fastify/rate-limit/store/LocalStore') as new (continueExceeding: boolean, exponentialBackoff: boolean, cache: number) => PluginStore

/** Entries the in-memory fallback keeps (least recently used are evicted). */
export const LOCAL_CACHE_SIZE = 50_000

function incr (store: PluginStore, key: string, timeWindow: number, max: number): Promise<IncrResult> {
  return new Promise((resolve, reject) => {
    store.incr(key, (error, result) => { error ? reject(error) : resolve(result!) }, timeWindow, max)
  })
}

export class FailoverLimiterStore implements FastifyRateLimitStore {
  private readonly local: PluginStore
  private readonly shared: PluginStore | null

  constructor (private readonly failover: RedisFailover, keyPrefix: string) {
    this.local = new LocalStore(false, false, LOCAL_CACHE_SIZE)
    this.shared = failover.redis ? new RedisStore(false, false, failover.redis, keyPrefix) : null
  }

  incr (key: string, callback: IncrCallback, timeWindow: number, max: number): void {
    this.failover.run(
      () => incr(this.shared!, key, timeWindow, max),
      () => incr(this.local, key, timeWindow, max),
      'rate limits'
    ).then(result => callback(null, result), error => callback(error as Error))
  }

  child (): FastifyRateLimitStore {
    return this
  }

  /** A constructor bound to this app's failover and key prefix, as the plugin's `store` option expects. */
  static bound (failover: RedisFailover, keyPrefix: string): FastifyRateLimitStoreCtor {
    const store = new FailoverLimiterStore(failover, keyPrefix)
    return function BoundFailoverStore () { return store } as unknown as FastifyRateLimitStoreCtor
  }
}

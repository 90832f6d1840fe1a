// Counters of failed authentication attempts in fixed windows (login per email/IP, API-key lookups per
// IP). An attempt is checked and counted in one atomic step *before* the credential is checked — so a
// burst of parallel guesses cannot slip past a limit — and a refused attempt counts against nothing, so a
// blocked client cannot push a wider counter (say, the email's) up by hammering. The caller takes the count
// back when the attempt succeeded, or failed for a reason that is not the client's (database down).
// Shared through Redis while the Redis circuit breaker is closed; an in-process map otherwise or whenever a
// Redis call fails (reported to the breaker). The count is always taken back from the store that made it.
import type { Redis } from 'ioredis'
import { breakerFor } from '../limits/redis-failover.js'
import { defineScript, reply } from '../store/redis-script.js'

export interface AttemptLimit {
  /** Counter key (without the Redis key prefix). */
  key: string
  /** Failed attempts allowed per window; the next attempt is refused. */
  max: number
}

export interface Attempt {
  /** 0 when the attempt may go ahead (it was counted), else milliseconds until attempts are allowed again. */
  waitMs: number
  /** Index in the limits of the limit that refused the attempt (-1 when allowed). */
  refusedBy: number
  /** Takes the count back (no-op for a refused attempt, and idempotent). */
  release(): Promise<void>
}

export interface AttemptThrottleOptions {
  windowMs: number
  /** The Redis client (null → memory). */
  redis: () => Redis | null
  keyPrefix: string
  /** Names this throttle in the breaker's warnings. */
  component: string
}

export interface AttemptThrottle {
  attempt(limits: AttemptLimit[]): Promise<Attempt>
}

const MAX_MEMORY_ENTRIES = 50_000

// KEYS counters; ARGV[1] window (ms), ARGV[1 + i] the max of KEYS[i].
// Returns { waitMs, refusedBy (1-based, 0 = none) }.
const ATTEMPT = defineScript({
  name: 'attempt',
  keys: 'any',
  parse: reply.pair,
  lua: `local wait, by = 0, 0
for i, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') >= tonumber(ARGV[i + 1]) then
    local ttl = redis.call('PTTL', key)
    if ttl <= 0 then ttl = tonumber(ARGV[1]) end
    if ttl > wait then wait, by = ttl, i end
  end
end
if wait > 0 then return { wait, by } end
for _, key in ipairs(KEYS) do
  redis.call('SET', key, '0', 'PX', ARGV[1], 'NX')
  redis.call('INCR', key)
end
return { 0, 0 }`
})
// Decrement only keys that still exist: a DECR on an expired key would create one without a TTL.
const UNCOUNT = defineScript({
  name: 'attempt uncount',
  keys: 'any',
  parse: reply.integer,
  lua: 'for _, key in ipairs(KEYS) do ' +
    "if tonumber(redis.call('GET', key) or '0') > 0 then redis.call('DECR', key) end " +
    'end return 0'
})

export function createAttemptThrottle (options: AttemptThrottleOptions): AttemptThrottle {
  const memory = new Map<string, { count: number, resetAt: number }>()

  const ready = (): Redis | null => {
    const client = options.redis()
    return client && breakerFor(client).usable() ? client : null
  }
  const failed = (client: Redis, err: unknown, started: number) => {
    breakerFor(client).failure(options.component, err, started)
  }

  function memoryAttempt (keys: string[], limits: AttemptLimit[]): [number, number] {
    const now = Date.now()
    prune(now)
    let wait = 0
    let by = -1
    keys.forEach((key, i) => {
      const entry = memory.get(key)
      if (!entry || entry.resetAt <= now || entry.count < limits[i].max || entry.resetAt - now <= wait) return
      wait = entry.resetAt - now
      by = i
    })
    if (wait > 0) return [wait, by]
    for (const key of keys) {
      let entry = memory.get(key)
      if (!entry || entry.resetAt <= now) memory.set(key, entry = { count: 0, resetAt: now + options.windowMs })
      entry.count++
    }
    return [0, -1]
  }

  function memoryRelease (keys: string[]): void {
    const now = Date.now()
    for (const key of keys) {
      const entry = memory.get(key)
      if (entry && entry.resetAt > now && entry.count > 0) entry.count--
    }
  }

  function prune (now: number) {
    if (memory.size < MAX_MEMORY_ENTRIES) return
    for (const [key, entry] of memory) if (entry.resetAt <= now) memory.delete(key)
    // Still full of live entries: drop the oldest rather than grow without bound.
    for (const key of memory.keys()) {
      if (memory.size < MAX_MEMORY_ENTRIES) break
      memory.delete(key)
    }
  }

  return {
    async attempt (limits) {
      const keys = limits.map(l => options.keyPrefix + l.key)
      let counted: Redis | 'memory' = 'memory'
      let result: [number, number] | null = null
      const client = ready()
      const started = performance.now()
      if (client) {
        try {
          const [wait, by] = await ATTEMPT(client, keys, [options.windowMs, ...limits.map(l => l.max)])
          result = [wait, by - 1]
          counted = client
        } catch (err) {
          failed(client, err, started)
        }
      }
      result ??= memoryAttempt(keys, limits)
      const [waitMs, refusedBy] = result
      let released = waitMs > 0
      return {
        waitMs,
        refusedBy,
        async release () {
          if (released) return
          released = true
          if (counted === 'memory') return memoryRelease(keys)
          // Redis failed since: the count stays there and lapses with its window (never uncount in memory).
          const client = counted
          const at = performance.now()
          await UNCOUNT(client, keys).catch((err: unknown) => failed(client, err, at))
        }
      }
    }
  }
}

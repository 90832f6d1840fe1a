// The rate-limit counters: fixed windows, one per key (a scope and a client), counted in Redis (shared by
// every replica) or in this process's memory while the Redis circuit breaker is open (see redis-failover.ts).
// A request counts every scope it is limited under at once: in Redis, one Lua call over all of its keys
// (one round trip however many scopes), atomic, so limits stay exact across replicas. (The app talks to one
// Redis server, not a Cluster, so the keys of a request need not share a hash slot.)
import { createHash } from 'node:crypto'
import type { Redis } from 'ioredis'
import { defineScript } from '../store/redis-script.js'
import { tickPipelineFor, TurnBatch } from './tick-pipeline.js'
import type { RedisFailover } from './redis-failover.js'

export interface WindowCount {
  /** Requests counted in the window, this one included. */
  current: number
  /** Milliseconds until the window ends. */
  ttl: number
}

/** One window to count a request in: its key and its length (ms). */
export interface WindowRequest {
  key: string
  timeWindow: number
}

/** Windows the in-memory fallback keeps (the least recently counted are dropped first). */
export const LOCAL_CACHE_SIZE = 50_000

/** An even-length list of integers: (current, ttl) per key. */
function countPairs (value: unknown): number[] {
  if (!Array.isArray(value) || value.length % 2 !== 0 || !value.every(item => typeof item === 'number')) {
    throw new Error('expected (current, ttl) integer pairs')
  }
  return value
}

// KEYS: the counters; ARGV[i]: the window (ms) of KEYS[i]. Counts the request in each; the first one of a
// window starts its expiry (so does a counter found without one, which would otherwise never reset).
// Returns {current1, ttl1, current2, ttl2, …}.
const INCR_ALL_LUA = `local out = {}
for i, key in ipairs(KEYS) do
  local window = tonumber(ARGV[i])
  local current = redis.call('INCR', key)
  local ttl = -1
  if current > 1 then ttl = redis.call('PTTL', key) end
  if ttl < 0 then
    redis.call('PEXPIRE', key, window)
    ttl = window
  end
  out[2 * i - 1] = current
  out[2 * i] = ttl
end
return out`
const INCR_ALL = defineScript({ name: 'rate limit', keys: 'any', parse: countPairs, lua: INCR_ALL_LUA })
const INCR_ALL_SHA = createHash('sha1').update(INCR_ALL_LUA).digest('hex')
const isNoScript = (error: unknown) => error instanceof Error && error.message.startsWith('NOSCRIPT')

function pairsToCounts (flat: number[], expected: number): WindowCount[] {
  if (flat.length !== expected * 2) {
    throw new Error(`unexpected reply from the rate limit script: ${flat.length / 2} counts for ${expected} keys`)
  }
  const counts: WindowCount[] = new Array(expected)
  for (let i = 0; i < expected; i++) counts[i] = { current: flat[2 * i], ttl: flat[2 * i + 1] }
  return counts
}

/** Keys in one script call at most; a busier turn sends several calls (still one write). */
const KEYS_PER_CALL = 1024

/**
 * Windows in Redis under `keyPrefix`. The requests counted during one turn of the event loop go out as one
 * script call over all of their keys (a TurnBatch, tick-pipeline.ts), with the turn's other request-path commands
 * in one write. The script counts key after key, so every request gets the counts it would have had alone, and
 * one request's keys are still counted together, atomically: exact across replicas. A failed call fails every
 * request in it (each then falls back as a failed call did before).
 */
export class RedisWindows {
  private readonly batch: TurnBatch<readonly WindowRequest[], WindowCount[]>

  constructor (private readonly redis: Redis, private readonly keyPrefix: string) {
    const pipeline = tickPipelineFor(redis)
    this.batch = new TurnBatch(pipeline, {
      units: requests => requests.length,
      maxUnits: KEYS_PER_CALL,
      send: (batch, n) => {
        const args = new Array<string | number>(2 + 2 * n)
        args[0] = INCR_ALL_SHA
        args[1] = n
        let k = 0
        for (let i = 0; i < batch.length; i++) {
          const requests = batch[i]
          for (let j = 0; j < requests.length; j++, k++) {
            args[2 + k] = this.keyPrefix + requests[j].key
            args[2 + n + k] = requests[j].timeWindow
          }
        }
        const answer = (reply: unknown) => {
          const counts = pairsToCounts(INCR_ALL.parse(reply), n)
          const split = new Array<WindowCount[]>(batch.length)
          let at = 0
          for (let i = 0; i < batch.length; i++) {
            split[i] = counts.slice(at, at + batch[i].length)
            at += batch[i].length
          }
          return split
        }
        return pipeline.call('evalsha', args).then(answer, (error: unknown) => {
          if (!isNoScript(error)) throw error
          // A new, restarted or flushed server: send the script itself (ioredis keeps it cached from then on).
          return INCR_ALL(this.redis, args.slice(2, 2 + n) as string[], args.slice(2 + n)).then(answer)
        })
      }
    })
  }

  /** Counts a request in every window of `requests`, in one round trip; the counts are in the same order. */
  incrAll (requests: readonly WindowRequest[]): Promise<WindowCount[]> {
    return this.batch.add(requests)
  }

  async incr (key: string, timeWindow: number): Promise<WindowCount> {
    const [count] = await this.incrAll([{ key, timeWindow }])
    return count
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

  incrAll (requests: readonly WindowRequest[], now = Date.now()): WindowCount[] {
    return requests.map(({ key, timeWindow }) => this.incr(key, timeWindow, now))
  }

  get size (): number {
    return this.windows.size
  }
}

/**
 * Every window of a request counted together: in Redis through the app's circuit breaker (one script call),
 * or in memory when Redis is not configured, the breaker is open, or the call fails.
 */
export class FailoverWindows {
  private readonly local: LocalWindows
  private readonly shared: RedisWindows | null

  constructor (private readonly failover: RedisFailover, keyPrefix: string, capacity = LOCAL_CACHE_SIZE) {
    this.local = new LocalWindows(capacity)
    this.shared = failover.redis ? new RedisWindows(failover.redis, keyPrefix) : null
  }

  /** Counts a request in every window of `requests`; the counts are in the same order. */
  count (requests: readonly WindowRequest[]): Promise<WindowCount[]> | WindowCount[] {
    const { shared, local } = this
    if (!shared) return local.incrAll(requests)
    return this.failover.run(() => shared.incrAll(requests), () => local.incrAll(requests), 'rate limits')
  }
}

// Redis response cache (shared by every replica). A Redis failure never fails or delays a request: reads
// are bounded by the command timeout and skipped while the Redis circuit breaker is open (the local
// memory cache answers instead), and writes never wait (fire-and-forget through the breaker; the memory
// cache takes them while it is open). Failures go to the breaker, which rate-limits the warnings;
// onError sees only the rest (Redis answered with an error). clear() scans the agent's namespace (SCAN
// MATCH on the escaped namespace only) and matches the client's glob here with the memory cache's
// linear-time matcher: a client pattern never reaches Redis, and both stores give it one meaning.
import type { Redis } from 'ioredis'
import { breakerFor } from '../limits/redis-failover.js'
import { tickPipelineFor, TurnBatch } from '../limits/tick-pipeline.js'
import { globMatcher } from './glob.js'
import { escapeGlob, type CachedResponse, type ResponseCache } from './response-cache.js'

export interface RedisCacheOptions {
  fallback: ResponseCache
  onError?(operation: string, error: Error): void
}

const COMPONENT = 'response cache'

export function createRedisCache (redis: Redis, options: RedisCacheOptions): ResponseCache {
  const { fallback } = options
  const breaker = breakerFor(redis)
  // The reads of one event-loop turn are one MGET, sent with the turn's other request-path commands (one write);
  // writes stay immediate fire-and-forget SETs.
  const pipeline = tickPipelineFor(redis)
  const reads = new TurnBatch<string, unknown>(pipeline, {
    units: () => 1,
    maxUnits: 256,
    send: keys => pipeline.call('mget', keys).then(values => {
      if (!Array.isArray(values) || values.length !== keys.length) throw new Error('unexpected reply to MGET')
      return values
    })
  })
  const report = (operation: string, error: unknown, started: number) => {
    if (!breaker.failure(COMPONENT, error, started)) {
      options.onError?.(operation, error instanceof Error ? error : new Error(String(error)))
    }
  }

  async function attempt<T> (operation: string, run: () => Promise<T>, otherwise: () => Promise<T>): Promise<T> {
    if (!breaker.usable()) return otherwise()
    const started = performance.now()
    try {
      return await run()
    } catch (error) {
      report(operation, error, started)
      return otherwise()
    }
  }

  async function scan (match: string, each: (keys: string[]) => Promise<void>): Promise<void> {
    let cursor = '0'
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', match, 'COUNT', 500)
      cursor = next
      if (keys.length > 0) await each(keys)
    } while (cursor !== '0')
  }

  return {
    kind: 'redis',
    get: (key) => attempt('get', async () => {
      const raw = await reads.add(key)
      if (typeof raw !== 'string' || raw === '') return null
      const cached: CachedResponse = JSON.parse(raw) // our own JSON, written by set()
      return cached
    }, () => fallback.get(key)),
    async set (key, value, ttlSeconds) {
      if (!breaker.usable()) return fallback.set(key, value, ttlSeconds)
      const started = performance.now()
      redis.set(key, JSON.stringify(value), 'EX', ttlSeconds).catch(error => report('set', error, started))
    },
    async clear (namespace, pattern) {
      const local = await fallback.clear(namespace, pattern)
      const remote = await attempt('clear', async () => {
        const matches = globMatcher(pattern)
        let removed = 0
        await scan(`${escapeGlob(namespace)}*`, async keys => {
          const doomed = keys.filter(key => key.startsWith(namespace) && matches(key.slice(namespace.length)))
          if (doomed.length > 0) removed += await redis.unlink(...doomed)
        })
        return removed
      }, async () => 0)
      return local + remote
    },
    size: (namespace) => attempt('size', async () => {
      let count = 0
      await scan(`${escapeGlob(namespace)}*`, async keys => { count += keys.length })
      return count
    }, () => fallback.size(namespace))
  }
}

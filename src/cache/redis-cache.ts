// Redis response cache (shared by every replica). A Redis failure never fails a request: while Redis is
// unreachable the cache reads and writes a local memory cache instead, and reports the error through
// onError so metrics and logs show it. clear() uses SCAN MATCH anchored on the escaped namespace.
import type { Redis } from 'ioredis'
import { escapeGlob, type CachedResponse, type ResponseCache } from './response-cache.js'

export interface RedisCacheOptions {
  fallback: ResponseCache
  onError?(operation: string, error: Error): void
}

export function createRedisCache (redis: Redis, options: RedisCacheOptions): ResponseCache {
  const { fallback } = options
  const usable = () => redis.status === 'ready'

  async function attempt<T> (operation: string, run: () => Promise<T>, otherwise: () => Promise<T>): Promise<T> {
    if (!usable()) {
      options.onError?.(operation, new Error(`redis ${redis.status}`))
      return otherwise()
    }
    try {
      return await run()
    } catch (error) {
      options.onError?.(operation, error as Error)
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
      const raw = await redis.get(key)
      return raw ? JSON.parse(raw) as CachedResponse : null
    }, () => fallback.get(key)),
    set: (key, value, ttlSeconds) => attempt('set', async () => {
      await redis.set(key, JSON.stringify(value), 'EX', ttlSeconds)
    }, () => fallback.set(key, value, ttlSeconds)),
    async clear (namespace, pattern) {
      const local = await fallback.clear(namespace, pattern)
      const remote = await attempt('clear', async () => {
        let removed = 0
        await scan(escapeGlob(namespace) + pattern, async keys => { removed += await redis.unlink(...keys) })
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

// In-memory response cache: a Map used as an LRU bounded by entry count, with per-entry expiry.
import { globMatcher } from './glob.js'
import type { CachedResponse, ResponseCache } from './response-cache.js'

export function createMemoryCache (options: {
  maxEntries: number
  now?: () => number
}): ResponseCache & { entries(): number } {
  const now = options.now ?? Date.now
  const store = new Map<string, { value: CachedResponse; expiresAt: number }>()

  return {
    kind: 'memory',
    async get (key) {
      const entry = store.get(key)
      if (!entry) return null
      store.delete(key)
      if (entry.expiresAt <= now()) return null
      store.set(key, entry) // most recently used goes last
      return entry.value
    },
    async set (key, value, ttlSeconds) {
      store.delete(key)
      store.set(key, { value, expiresAt: now() + ttlSeconds * 1000 })
      for (const oldest of store.keys()) {
        if (store.size <= options.maxEntries) break
        store.delete(oldest)
      }
    },
    async clear (namespace, pattern) {
      const matches = globMatcher(pattern)
      let removed = 0
      for (const key of [...store.keys()]) {
        if (key.startsWith(namespace) && matches(key.slice(namespace.length))) {
          store.delete(key)
          removed++
        }
      }
      return removed
    },
    async size (namespace) {
      const at = now()
      let count = 0
      for (const [key, entry] of store) if (key.startsWith(namespace) && entry.expiresAt > at) count++
      return count
    },
    entries: () => store.size
  }
}

// Login attempts per email and per client IP (fixed one-minute window by default). Every attempt is
// counted atomically *before* the password is checked — so a burst of parallel guesses cannot slip past the
// limit — and a successful login takes its count back, so only failures use up the allowance. Shared
// through Redis (SET NX PX + INCR: every window key expires) when Redis is ready; an in-process map
// otherwise or whenever a Redis call fails. Emails are hashed before they become keys.
import { createHash } from 'node:crypto'
import type { Redis } from 'ioredis'

export interface LoginThrottleOptions {
  /** Failed attempts allowed per window; the next attempt is refused. */
  max: number
  windowMs: number
  /** The Redis client to use now (null or not ready → memory). */
  redis: () => Redis | null
  keyPrefix: string
  onRedisError?: (err: Error) => void
}

export interface LoginSubjects { email: string, ip: string }

export interface LoginThrottle {
  /** Counts an attempt; 0 when it may go ahead, else milliseconds until attempts are allowed again. */
  attempt(subjects: LoginSubjects): Promise<number>
  /** Takes back the count of an attempt that succeeded. */
  succeeded(subjects: LoginSubjects): Promise<void>
}

const MAX_MEMORY_ENTRIES = 50_000
// Decrement only keys that still exist: a DECR on an expired key would create one without a TTL.
const UNCOUNT = "for i, key in ipairs(KEYS) do if redis.call('EXISTS', key) == 1 then redis.call('DECR', key) end end return 0"

export function createLoginThrottle (options: LoginThrottleOptions): LoginThrottle {
  const memory = new Map<string, { count: number, resetAt: number }>()

  const keysOf = ({ email, ip }: LoginSubjects): string[] => [
    `${options.keyPrefix}login:email:${createHash('sha256').update(email.trim().toLowerCase()).digest('hex').slice(0, 32)}`,
    `${options.keyPrefix}login:ip:${ip}`
  ]

  const ready = (): Redis | null => {
    const client = options.redis()
    return client && client.status === 'ready' ? client : null
  }

  async function withRedis<T> (run: (client: Redis) => Promise<T>, fallback: () => T): Promise<T> {
    const client = ready()
    if (client) {
      try {
        return await run(client)
      } catch (err) {
        options.onRedisError?.(err as Error)
      }
    }
    return fallback()
  }

  async function redisAttempt (client: Redis, keys: string[]): Promise<number> {
    const multi = client.multi()
    for (const key of keys) multi.set(key, '0', 'PX', options.windowMs, 'NX').incr(key).pttl(key)
    const results = await multi.exec()
    if (!results) throw new Error('redis transaction aborted')
    let wait = 0
    keys.forEach((_key, i) => {
      const [, [countErr, count], [ttlErr, ttl]] = results.slice(i * 3, i * 3 + 3)
      if (countErr || ttlErr) throw countErr ?? ttlErr
      if (Number(count) > options.max) wait = Math.max(wait, Number(ttl) > 0 ? Number(ttl) : options.windowMs)
    })
    return wait
  }

  function memoryAttempt (keys: string[]): number {
    const now = Date.now()
    prune(now)
    let wait = 0
    for (const key of keys) {
      let entry = memory.get(key)
      if (!entry || entry.resetAt <= now) memory.set(key, entry = { count: 0, resetAt: now + options.windowMs })
      entry.count++
      if (entry.count > options.max) wait = Math.max(wait, entry.resetAt - now)
    }
    return wait
  }

  function prune (now: number) {
    if (memory.size < MAX_MEMORY_ENTRIES) return
    for (const [key, entry] of memory) if (entry.resetAt <= now) memory.delete(key)
    // Still full of live entries: drop the oldest rather than grow without bound.
    while (memory.size >= MAX_MEMORY_ENTRIES) memory.delete(memory.keys().next().value!)
  }

  return {
    attempt (subjects) {
      const keys = keysOf(subjects)
      return withRedis(client => redisAttempt(client, keys), () => memoryAttempt(keys))
    },
    async succeeded (subjects) {
      const keys = keysOf(subjects)
      await withRedis(async client => { await client.eval(UNCOUNT, keys.length, ...keys) }, () => {
        const now = Date.now()
        for (const key of keys) {
          const entry = memory.get(key)
          if (entry && entry.resetAt > now && entry.count > 0) entry.count--
        }
      })
    }
  }
}

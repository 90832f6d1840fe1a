// The durable buffer of usage-ledger writes that could not reach the database in time: a Redis list when
// Redis is configured (any replica replays it), else an append-only JSON-lines file under DATA_DIR (the
// same replica replays it at its next start), else memory (DATA_DIR=memory://, tests). Redis falls back to
// the file while it fails. drain() hands the oldest entries to a writer and removes them only after it
// succeeded; the writer's upserts are idempotent, so an entry replayed twice never counts twice.
import { appendFile, mkdir, readdir, readFile, rename, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import type { Redis } from 'ioredis'
import { defineScript, reply } from './redis-script.js'

export interface UsageBuffer {
  readonly kind: 'redis' | 'file' | 'memory'
  /** Appends entries durably; rejects only when no store could take them. */
  push(entries: object[]): Promise<void>
  /** Entries waiting (the Redis part as of the last push or drain). */
  depth(): number
  /** Writes the waiting entries, oldest first, in batches of `max`; returns how many were written. */
  drain(write: (entries: unknown[]) => Promise<void>, max: number): Promise<number>
}

const FILE = 'pending.jsonl'

/** The entries of JSON-lines text; a torn line (a crash during its write) is skipped. */
export function parseLines (text: string): unknown[] {
  const entries: unknown[] = []
  for (const line of text.split('\n')) {
    if (!line) continue
    try { entries.push(JSON.parse(line)) } catch {} // a torn last line of a crash: its write was retried
  }
  return entries
}

export function createMemoryBuffer (): UsageBuffer {
  let entries: unknown[] = []
  return {
    kind: 'memory',
    async push (more) { entries.push(...more) },
    depth: () => entries.length,
    async drain (write, max) {
      let written = 0
      while (entries.length > 0) {
        const batch = entries.slice(0, max)
        await write(batch)
        entries = entries.slice(batch.length)
        written += batch.length
      }
      return written
    }
  }
}

/** Appends go to pending.jsonl; a drain renames it to replay-<time>.jsonl first, so appends never race it. */
export async function createFileBuffer (dir: string): Promise<UsageBuffer> {
  await mkdir(dir, { recursive: true })
  const replayFiles = async () => (await readdir(dir)).filter(f => /^replay-\d+-\d+\.jsonl$/.test(f)).sort()
  let depth = 0
  for (const file of [...await replayFiles(), FILE]) {
    depth += parseLines(await readFile(join(dir, file), 'utf8').catch(() => '')).length
  }
  let chain: Promise<unknown> = Promise.resolve()
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const next = chain.then(fn, fn)
    chain = next.catch(() => {})
    return next
  }
  let sequence = 0
  return {
    kind: 'file',
    push: (entries) => serial(async () => {
      await appendFile(join(dir, FILE), entries.map(e => JSON.stringify(e) + '\n').join(''))
      depth += entries.length
    }),
    depth: () => depth,
    async drain (write, max) {
      await serial(async () => {
        await rename(join(dir, FILE), join(dir, `replay-${Date.now()}-${sequence++}.jsonl`)).catch(() => {})
      })
      let written = 0
      for (const file of await replayFiles()) {
        const entries = parseLines(await readFile(join(dir, file), 'utf8').catch(() => ''))
        for (let i = 0; i < entries.length; i += max) await write(entries.slice(i, i + max))
        await unlink(join(dir, file))
        depth = Math.max(0, depth - entries.length)
        written += entries.length
      }
      return written
    }
  }
}

// Trims the drained head only while this flusher still holds the lock (another may have taken over).
const TRIM = defineScript({
  name: 'usage buffer trim',
  keys: 2,
  parse: reply.integer,
  lua: "if redis.call('get', KEYS[2]) == ARGV[1] then " +
    "redis.call('ltrim', KEYS[1], tonumber(ARGV[2]), -1) return 1 end return 0"
})
// Gives the drain lock back only if this flusher still holds it.
const UNLOCK = defineScript({
  name: 'usage buffer unlock',
  keys: 1,
  parse: reply.integer,
  lua: "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
})

/**
 * The app's Redis circuit breaker (src/limits/redis-failover.ts): while it is open pushes go to the fallback
 * at once and drains skip the Redis list (only the ticker drains; no request waits on it either way).
 */
export interface RedisGate {
  run<T>(onRedis: (redis: Redis) => Promise<T>, onFallback: () => T | Promise<T>): Promise<T>
  usable(): boolean
}

export interface RedisBufferOptions {
  redis: Redis
  key: string
  fallback: UsageBuffer
  timeoutMs: number
  token: string
  breaker?: RedisGate
}

/** A Redis list; one replica drains it at a time (a lock with a lease); pushes fall back while Redis fails. */
export function createRedisBuffer (options: RedisBufferOptions): UsageBuffer {
  const { redis, key, fallback, timeoutMs, token } = options
  const lockKey = `${key}:lock`
  let redisDepth = 0
  const within = <T>(promise: Promise<T>): Promise<T> => Promise.race([promise, new Promise<T>((_resolve, reject) => {
    setTimeout(() => reject(new Error(`Redis did not answer within ${timeoutMs} ms`)), timeoutMs).unref()
  })])
  return {
    kind: 'redis',
    async push (entries) {
      const onRedis = async (client: Redis) => {
        redisDepth = await within(client.rpush(key, ...entries.map(e => JSON.stringify(e))))
      }
      if (options.breaker) return options.breaker.run(onRedis, () => fallback.push(entries))
      await onRedis(redis).catch(() => fallback.push(entries))
    },
    depth: () => redisDepth + fallback.depth(),
    // Errors of the writer (the database) propagate; Redis errors only end this drain early.
    async drain (write, max) {
      let written = await fallback.drain(write, max)
      const quietly = <T>(promise: Promise<T>) => within(promise).catch(() => undefined)
      if (options.breaker && !options.breaker.usable()) return written
      if (await quietly(redis.set(lockKey, token, 'PX', 60_000, 'NX')) !== 'OK') return written
      try {
        for (;;) {
          const raw = await quietly(redis.lrange(key, 0, max - 1))
          if (!raw || raw.length === 0) break
          await write(parseLines(raw.join('\n')))
          if (await quietly(TRIM(redis, [key, lockKey], [token, raw.length])) !== 1) break
          written += raw.length
        }
      } finally {
        redisDepth = await quietly(redis.llen(key)) ?? redisDepth
        await quietly(UNLOCK(redis, [lockKey], [token]))
      }
      return written
    }
  }
}

// One-time stream tickets for EventSource, which cannot send headers (DESIGN §7). A ticket is bound to
// the caller who asked for it and lives 60 s; the first stream it opens claims it (atomically), after
// which it is good only for resuming that same stream, until the replay TTL ends. Only a SHA-256 of
// the ticket is stored (Redis when configured — any replica accepts it — else memory).
import { createHash, randomBytes } from 'node:crypto'
import type { Redis } from 'ioredis'
import type { Caller } from '../auth/roles.js'
import { ServiceUnavailableError, withDetails } from '../errors.js'
import { breakerFor } from '../limits/redis-failover.js'
import { defineScript, reply } from '../store/redis-script.js'

export interface TicketRecord {
  caller: Caller
  /** Set once the ticket has started a stream. */
  streamId?: string
  expiresAt: number
}

export interface TicketStore {
  issue(caller: Caller): Promise<{ ticket: string, expiresAt: number }>
  peek(ticket: string): Promise<TicketRecord | null>
  /** Binds an unused ticket to the stream it starts; false when it is unknown, expired or already used. */
  claim(ticket: string, streamId: string): Promise<boolean>
}

export interface TicketOptions {
  redis: Redis | null
  keyPrefix: string
  ticketTtlMs: number
  replayTtlMs: number
  onError?: (error: Error) => void
}

export const TICKET_PREFIX = 'amkt_'

const hash = (ticket: string) => createHash('sha256').update(ticket).digest('base64url')

// KEYS[1] ticket hash; ARGV stream id, new TTL (ms), new expiresAt. -1 unknown, 0 already used, 1 claimed.
const CLAIM = defineScript({
  name: 'ticket claim',
  keys: 1,
  parse: reply.integer,
  lua: `if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('HSETNX', KEYS[1], 'streamId', ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'expiresAt', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`
})

export function createTicketStore (options: TicketOptions): TicketStore {
  const memory = new Map<string, TicketRecord>()
  const { redis, keyPrefix, ticketTtlMs, replayTtlMs } = options
  const key = (h: string) => `${keyPrefix}stream-ticket:${h}`
  // Every Redis call goes through the Redis circuit breaker: refused at once (503) while it is open.
  const breaker = redis ? breakerFor(redis) : null
  async function shared<T> (client: Redis, run: (client: Redis) => Promise<T>): Promise<T> {
    const unavailable = () =>
      withDetails(
        new ServiceUnavailableError('Stream tickets cannot be checked right now (Redis unavailable); retry shortly'),
        undefined,
        { 'retry-after': '2' }
      )
    if (!breaker?.usable()) throw unavailable()
    const started = performance.now()
    try {
      return await run(client)
    } catch (error) {
      if (breaker.failure('stream tickets', error, started)) throw unavailable()
      throw error
    }
  }

  const memoryGet = (h: string): TicketRecord | null => {
    const record = memory.get(h)
    if (record && record.expiresAt <= Date.now()) memory.delete(h)
    return record && record.expiresAt > Date.now() ? record : null
  }
  const sweep = () => { for (const h of memory.keys()) memoryGet(h) }

  return {
    async issue (caller) {
      const ticket = TICKET_PREFIX + randomBytes(24).toString('base64url')
      const h = hash(ticket)
      const expiresAt = Date.now() + ticketTtlMs
      if (redis) {
        try {
          await shared(redis, client => client.multi()
            .hset(key(h), 'caller', JSON.stringify(caller), 'expiresAt', String(expiresAt))
            .pexpire(key(h), ticketTtlMs)
            .exec())
          return { ticket, expiresAt }
        } catch (error) {
          // Redis down: this replica alone will accept the ticket (the breaker logged an outage already).
          if (!(error instanceof ServiceUnavailableError)) {
            options.onError?.(error instanceof Error ? error : new Error(String(error)))
          }
        }
      }
      if (memory.size > 10_000) sweep()
      memory.set(h, { caller, expiresAt })
      return { ticket, expiresAt }
    },

    async peek (ticket) {
      if (!ticket.startsWith(TICKET_PREFIX)) return null
      const h = hash(ticket)
      const local = memoryGet(h)
      if (local || !redis) return local
      const fields = await shared(redis, client => client.hgetall(key(h)))
      if (!fields.caller) return null
      return {
        caller: JSON.parse(fields.caller) as Caller,
        streamId: fields.streamId,
        expiresAt: Number(fields.expiresAt)
      }
    },

    async claim (ticket, streamId) {
      const h = hash(ticket)
      const local = memoryGet(h)
      if (local) {
        if (local.streamId) return false
        local.streamId = streamId
        local.expiresAt = Date.now() + replayTtlMs
        return true
      }
      if (!redis) return false
      const claimed = await shared(redis, client =>
        CLAIM(client, [key(h)], [streamId, replayTtlMs, Date.now() + replayTtlMs])
      )
      return claimed === 1
    }
  }
}

// The event log on Redis Streams, so any replica can serve a resume. Streams generated here also pass
// through a local memory tier (the live connections of this process read that, no Redis round trip per
// token); every event is XADDed (batched per tick in one pipeline, explicit id 0-<seq>, MAXLEN ~ cap)
// and, once written, is released from the local tier as soon as every local reader has passed it (the
// newest event stays), so the process does not hold a second copy of the log. A resume from a position
// the local tier no longer holds reads Redis, like a resume on another replica. The keys expire
// STREAM_REPLAY_TTL after the last event (STREAM_ENDED_REPLAY_TTL once the stream has ended). A resume
// of a stream generated elsewhere replays with XRANGE and follows with XREAD BLOCK on a dedicated
// duplicate connection (blocking commands must not share the main client, whose short command timeout
// would cut them off).
//
// A replica that dies without shutting down leaves its streams without a terminal event. Each replica
// holds a lease in Redis (refreshed every leaseMs / 3); a follower on another replica that has waited
// blockMs without news checks the lease of the stream's instance and, when it has lapsed, appends
// GENERATION_INTERRUPTED itself (XADD with the next id, so of several followers only one succeeds and
// every follower reads the same end).
//
// Every Redis call goes through the app's Redis circuit breaker. While it is open nothing waits on
// Redis: writes (meta and events) stay queued in a bounded backlog, written in order once it closes, so
// the shared log stays contiguous; leases are neither renewed nor judged; remote reads fail at once.
import type { Redis } from 'ioredis'
import { breakerFor, type RedisBreaker } from '../limits/redis-failover.js'
import { heldData, interruptedEvent, isTerminal, type HeldEvent, type LoggedEvent, type StreamEvent } from './events.js'
import { assertContiguous, type EventLog, type StreamMeta } from './event-log.js'
import { MemoryEventLog } from './memory-event-log.js'

export interface RedisLogOptions {
  redis: Redis
  keyPrefix: string
  ttlMs: number
  /** Time to live of an ended stream's keys (default ttlMs). */
  endedTtlMs?: number
  maxEvents: number
  /** How long one XREAD blocks before checking that the stream and its instance still exist. */
  blockMs?: number
  /** This replica's id (StreamMeta.instanceId of the streams it generates) and how long its lease lasts. */
  instanceId: string
  leaseMs: number
  onError?: (error: Error, what: string) => void
}

type Entries = Array<[string, string[]]>

/** An event waiting for its XADD: its seq and the stored value (`{"event":…,"data":…}` JSON). */
interface PendingEvent { seq: number, value: string, terminal: boolean }

const COMPONENT = 'stream event log'
/** Streams whose unwritten events the backlog keeps while Redis is unreachable (each at most maxEvents). */
const BACKLOG_STREAMS = 10_000

function parse (entries: Entries | null | undefined): LoggedEvent[] {
  return (entries ?? []).map(([id, fields]) => {
    const seq = Number(id.slice(id.indexOf('-') + 1))
    const event: StreamEvent = JSON.parse(fields[1]) // our own JSON, written by flush()
    return { seq, ...event }
  })
}

export class RedisEventLog implements EventLog {
  readonly kind = 'redis' as const
  readonly local: MemoryEventLog
  /** Writes not yet in Redis, per stream: the meta (on create) and events in order. */
  private pending = new Map<string, { meta?: StreamMeta; events: PendingEvent[] }>()
  private flushing: Promise<void> | null = null
  /** When the keys' expiry of each running stream written here was last set (Date.now()). */
  private readonly expirySetAt = new Map<string, number>()
  private readonly followers = new Set<Redis>()
  private readonly lease: NodeJS.Timeout
  private readonly breaker: RedisBreaker

  constructor (private readonly options: RedisLogOptions) {
    const { ttlMs, endedTtlMs, maxEvents } = options
    this.local = new MemoryEventLog({ ttlMs, endedTtlMs, maxEvents })
    this.breaker = breakerFor(options.redis)
    // The backlog is written as soon as Redis answers again.
    this.breaker.onSwitch(to => {
      if (to === 'redis' && this.pending.size > 0) this.schedule()
    })
    const renew = () =>
      this.breaker.fire(COMPONENT, redis => redis.set(this.leaseKey(options.instanceId), '1', 'PX', options.leaseMs))
    renew()
    this.lease = setInterval(renew, Math.max(1, Math.floor(options.leaseMs / 3)))
    this.lease.unref()
  }

  private key (streamId: string, part: 'events' | 'meta'): string {
    return `${this.options.keyPrefix}stream:{${streamId}}:${part}`
  }

  private leaseKey (instanceId: string): string {
    return `${this.options.keyPrefix}stream-instance:${instanceId}`
  }

  /** Ends a stream whose instance's lease lapsed, unless an event after `cursor` was logged meanwhile. */
  private async endOrphan (streamId: string, instanceId: string, cursor: number): Promise<void> {
    // A lease cannot be judged while Redis is unreachable (its holder cannot renew it either).
    if (!this.breaker.usable() || (await this.remote(redis => redis.exists(this.leaseKey(instanceId)))) === 1) return
    await this.options.redis
      .xadd(
        this.key(streamId, 'events'),
        'MAXLEN',
        '~',
        String(this.options.maxEvents),
        `0-${cursor + 1}`,
        'e',
        JSON.stringify(interruptedEvent('stopped'))
      )
      .catch(() => {}) // another follower ended it, or the instance was alive after all and logged more
  }

  private get ttlSeconds (): number {
    return Math.max(1, Math.ceil(this.options.ttlMs / 1000))
  }

  private get endedTtlSeconds (): number {
    const ms = this.options.endedTtlMs ?? this.options.ttlMs
    return Math.min(this.ttlSeconds, Math.max(1, Math.ceil(ms / 1000)))
  }

  /** A read of the shared log: fails at once while the breaker is open; a failure is reported to it. */
  private async remote<T>(read: (redis: Redis) => Promise<T>): Promise<T> {
    if (!this.breaker.usable()) throw new Error('redis unavailable (circuit open)')
    const started = performance.now()
    try {
      return await read(this.options.redis)
    } catch (error) {
      this.breaker.failure(COMPONENT, error, started)
      throw error
    }
  }

  /** Created locally at once; the meta joins the next Redis write (waited for, unless Redis is unreachable). */
  async create (meta: StreamMeta): Promise<void> {
    await this.local.create(meta)
    const queued = this.pending.get(meta.streamId)
    if (queued) queued.meta = meta
    else this.pending.set(meta.streamId, { meta, events: [] })
    await this.schedule()
  }

  async meta (streamId: string): Promise<StreamMeta | null> {
    const local = await this.local.meta(streamId)
    if (local) return local
    const raw = await this.remote(redis => redis.get(this.key(streamId, 'meta')))
    if (!raw) return null
    const meta: StreamMeta = JSON.parse(raw) // our own JSON, written by flush()
    return meta
  }

  /**
   * Appends locally at once; the Redis write joins this tick's pipeline. Resolves when it is written (or kept
   * for later).
   */
  append (streamId: string, event: LoggedEvent): Promise<void> {
    let held: HeldEvent
    try {
      held = this.local.appendNow(streamId, event)
    } catch (error) {
      return Promise.reject(error)
    }
    // The stored value is the held event's data JSON wrapped (a string event's is not encoded again).
    const value = `{"event":${JSON.stringify(event.event)},"data":${heldData(held)}}`
    const pendingEvent: PendingEvent = { seq: event.seq, value, terminal: isTerminal(event) }
    const queued = this.pending.get(streamId)
    if (queued) {
      queued.events.push(pendingEvent)
      if (queued.events.length > this.options.maxEvents) queued.events.shift() // trimmed, as MAXLEN would
    } else {
      if (this.pending.size >= BACKLOG_STREAMS) this.pending.delete(this.pending.keys().next().value ?? '')
      this.pending.set(streamId, { events: [pendingEvent] })
    }
    return this.schedule()
  }

  private schedule (): Promise<void> {
    this.flushing ??= new Promise<void>(resolve => setImmediate(resolve)).then(() => this.flush())
    return this.flushing
  }

  private async flush (): Promise<void> {
    this.flushing = null
    if (!this.breaker.usable()) return // kept in the backlog until the breaker closes
    const batch = this.pending
    this.pending = new Map()
    const pipeline = this.options.redis.pipeline()
    const maxLen = String(this.options.maxEvents)
    const now = Date.now()
    // The keys' expiry is set again at most every tenth of the TTL while a stream runs (not per event), so
    // they live at least 0.9 × STREAM_REPLAY_TTL after the last event; the terminal event sets the ended TTL.
    const refreshMs = this.options.ttlMs / 10
    for (const [streamId, { meta, events }] of batch) {
      const key = this.key(streamId, 'events')
      const ended = events.some(e => e.terminal)
      const ttl = ended ? this.endedTtlSeconds : this.ttlSeconds
      if (meta) pipeline.set(this.key(streamId, 'meta'), JSON.stringify(meta), 'EX', ttl)
      for (const { seq, value } of events) pipeline.xadd(key, 'MAXLEN', '~', maxLen, `0-${seq}`, 'e', value)
      const refreshed = this.expirySetAt.get(streamId)
      if (ended || meta || refreshed === undefined || now - refreshed >= refreshMs) {
        if (events.length > 0) pipeline.expire(key, ttl)
        if (!meta) pipeline.expire(this.key(streamId, 'meta'), ttl)
        // The events key exists once an event is written: until then its expiry is set with every batch.
        if (ended) this.expirySetAt.delete(streamId)
        else if (events.length > 0) this.expirySetAt.set(streamId, now)
      }
    }
    const started = performance.now()
    let unavailable = false
    let failed = false
    try {
      const results = await pipeline.exec()
      for (const [error] of results ?? []) {
        // A reply error (an XADD already applied before a timeout, retried from the backlog) is not an outage.
        if (error && this.breaker.failure(COMPONENT, error, started)) unavailable = true
        else if (error && !/equal or smaller/.test(error.message)) {
          failed = true
          this.options.onError?.(error, 'append')
        }
      }
    } catch (error) {
      unavailable = this.breaker.failure(COMPONENT, error, started)
      if (!unavailable) this.options.onError?.(error instanceof Error ? error : new Error(String(error)), 'append')
      failed = true
    }
    if (unavailable) this.requeue(batch)
    else if (!failed) {
      // Stored in Redis: the local tier may let these events go once its readers have passed them.
      for (const [streamId, { events }] of batch) {
        if (events.length > 0) this.local.release(streamId, events[events.length - 1].seq)
      }
    }
  }

  /** Puts a batch that did not reach Redis back in front of what was queued since (order is kept). */
  private requeue (batch: Map<string, { meta?: StreamMeta; events: PendingEvent[] }>): void {
    for (const streamId of batch.keys()) this.expirySetAt.delete(streamId) // not written: set it with the retry
    for (const [streamId, later] of this.pending) {
      const earlier = batch.get(streamId)
      if (!earlier) batch.set(streamId, later)
      else {
        batch.set(streamId, {
          meta: later.meta ?? earlier.meta,
          events: [...earlier.events, ...later.events].slice(-this.options.maxEvents)
        })
      }
    }
    this.pending = batch
    if (this.breaker.usable()) this.schedule().catch(() => {})
  }

  /** The local tier still holds every event after `afterSeq` (none of them released yet). */
  private holds (streamId: string, afterSeq: number): boolean {
    const first = this.local.firstSeqNow(streamId)
    return this.local.has(streamId) && (first === 0 || first <= afterSeq + 1)
  }

  async read (streamId: string, afterSeq: number): Promise<LoggedEvent[]> {
    if (this.holds(streamId, afterSeq)) return this.local.read(streamId, afterSeq)
    return parse(await this.remote(redis => redis.xrange(this.key(streamId, 'events'), `(0-${afterSeq}`, '+')))
  }

  async firstSeq (streamId: string): Promise<number> {
    const local = this.local.firstSeqNow(streamId)
    if (this.local.has(streamId) && local <= 1) return local
    // Released here (or never held): Redis has the older events.
    const [first] = parse(await this.remote(redis => redis.xrange(this.key(streamId, 'events'), '-', '+', 'COUNT', 1)))
    return first?.seq ?? local
  }

  localFor (streamId: string, afterSeq = 0): MemoryEventLog | null {
    return this.holds(streamId, afterSeq) ? this.local : null
  }

  async last (streamId: string): Promise<LoggedEvent | null> {
    if (this.local.has(streamId)) return this.local.last(streamId)
    const [newest] = parse(
      await this.remote(redis => redis.xrevrange(this.key(streamId, 'events'), '+', '-', 'COUNT', 1))
    )
    return newest ?? null
  }

  follow (streamId: string, afterSeq: number, signal: AbortSignal): AsyncIterable<LoggedEvent> {
    if (this.holds(streamId, afterSeq)) return this.local.follow(streamId, afterSeq, signal)
    return this.followRemote(streamId, afterSeq, signal)
  }

  private async * followRemote (streamId: string, afterSeq: number, signal: AbortSignal): AsyncIterable<LoggedEvent> {
    const key = this.key(streamId, 'events')
    const blockMs = this.options.blockMs ?? 5000
    let cursor = afterSeq
    const replay = await this.read(streamId, cursor)
    assertContiguous(streamId, cursor, replay)
    for (const event of replay) {
      yield event
      cursor = event.seq
      if (isTerminal(event)) return
    }
    const newest = replay.at(-1) ?? (await this.last(streamId))
    // Resumed at or after the end. A terminal event newer than the cursor was appended after the replay
    // read: XREAD below delivers it and what came before it.
    if (newest && isTerminal(newest) && newest.seq <= cursor) return
    const reader = this.options.redis.duplicate({
      commandTimeout: undefined,
      blockingTimeout: blockMs + 5000,
      lazyConnect: true
    })
    reader.on('error', () => {})
    this.followers.add(reader)
    const stop = () => reader.disconnect()
    signal.addEventListener('abort', stop, { once: true })
    let instanceId: string | undefined // the generator's, read at the first quiet XREAD
    try {
      await reader.connect()
      while (!signal.aborted) {
        const reply = await reader.xread('BLOCK', blockMs, 'STREAMS', key, `0-${cursor}`)
        if (!reply) {
          if (this.breaker.usable() && (await this.remote(redis => redis.exists(key))) === 0) return
          instanceId ??= (await this.meta(streamId))?.instanceId
          if (instanceId) await this.endOrphan(streamId, instanceId, cursor)
          continue
        }
        const events = parse(reply[0][1])
        assertContiguous(streamId, cursor, events)
        for (const event of events) {
          yield event
          cursor = event.seq
          if (isTerminal(event)) return
        }
      }
    } catch (error) {
      if (!signal.aborted) throw error
    } finally {
      signal.removeEventListener('abort', stop)
      this.followers.delete(reader)
      reader.disconnect()
    }
  }

  size (): number {
    return this.local.size()
  }

  sweep (): number {
    return this.local.sweep()
  }

  /** Waits for the queued Redis writes (shutdown, terminal events); a backlog waits for Redis no longer. */
  async drain (): Promise<void> {
    while (this.flushing) await this.flushing
  }

  /** Events (and metas) waiting for Redis. */
  backlog (): number {
    let count = 0
    for (const { meta, events } of this.pending.values()) count += events.length + (meta ? 1 : 0)
    return count
  }

  async close (): Promise<void> {
    await this.drain()
    clearInterval(this.lease)
    // Every stream generated here has its end logged by now (shutdown aborted them): the lease can go.
    await this.options.redis.del(this.leaseKey(this.options.instanceId)).catch(() => {})
    for (const reader of this.followers) reader.disconnect()
    await this.local.close()
  }
}

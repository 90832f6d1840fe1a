// The shared half of per-agent statistics: increments wait in this replica's memory, merged per field,
// and one pipeline per period (AGENT_STATS_FLUSH_MS) sends them to Redis, one script call per agent
// with pending deltas. One unref'd timer serves every agent; close() flushes what is left (the plugin
// calls it in onClose, after the last request and before Redis is closed).
//
// While the Redis circuit breaker is open nothing is sent; the deltas stay pending, merged per field
// (bounded by MAX_PENDING_FIELDS distinct fields), and go out with the first flush after Redis answers.
// A batch whose reply was lost (timeout, connection dropped) is sent again as it was, under the same
// sequence number: the script applies each replica's sequence number once, so a retry never counts
// twice. A batch started before the agent's last reset (`meta|resetAt`) is dropped by the script, so a
// reset on one replica is not undone by another replica's older deltas (the cost: calls made on other
// replicas in the same period, just after the reset, are missing from the cluster totals).
// If the process dies without a graceful stop, at most one period of its deltas (more while Redis was
// down) never reaches the cluster totals; this replica's local figures are unaffected.
import { randomUUID } from 'node:crypto'
import type { Redis } from 'ioredis'
import { breakerFor } from '../limits/redis-failover.js'
import { defineScript, reply } from '../store/redis-script.js'
import { FLOAT_FIELDS, isCounterField, type Increment } from './stats-counters.js'

/** Distinct pending fields kept while Redis cannot take them; beyond, new fields are counted locally only. */
export const MAX_PENDING_FIELDS = 50_000
/** How long Redis remembers a replica's last applied sequence number (per agent) after its last flush. */
const SEQUENCE_TTL_MS = 86_400_000
const COMPONENT = 'agent stats'

export interface LastError { code: string, message: string, at: string }

interface Batch {
  /** Epoch ms of the first delta in it: a reset at or after this drops the batch. */
  since: number
  deltas: Map<string, number>
  lastCallAt: number | null
  lastError: LastError | null
  createdAt: number
}

interface SentBatch extends Batch { seq: number, inFlight: boolean }

// KEYS: the agent's hash, this replica's sequence hash. ARGV: seq, since, createdAt, lastCallAt ('' = none),
// lastError JSON ('' = none), lastError time, sequence TTL, then (field, 'f' | 'i', delta) triples.
// Returns 1 applied, 0 already applied (a retry), -1 dropped (started before the last reset).
const APPLY = defineScript({
  name: 'agent stats flush',
  keys: 2,
  lua: `
local seq = tonumber(ARGV[1])
if tonumber(redis.call('HGET', KEYS[2], KEYS[1]) or '0') >= seq then return 0 end
redis.call('HSET', KEYS[2], KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[7])
if tonumber(redis.call('HGET', KEYS[1], 'meta|resetAt') or '0') >= tonumber(ARGV[2]) then return -1 end
for i = 8, #ARGV, 3 do
  if ARGV[i + 1] == 'f' then redis.call('HINCRBYFLOAT', KEYS[1], ARGV[i], ARGV[i + 2])
  else redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 2]) end
end
redis.call('HSETNX', KEYS[1], 'meta|createdAt', ARGV[3])
if ARGV[4] ~= '' and tonumber(redis.call('HGET', KEYS[1], 'meta|lastCallAt') or '0') < tonumber(ARGV[4]) then
  redis.call('HSET', KEYS[1], 'meta|lastCallAt', ARGV[4])
end
if ARGV[5] ~= '' and tonumber(redis.call('HGET', KEYS[1], 'meta|lastErrorAt') or '0') < tonumber(ARGV[6]) then
  redis.call('HSET', KEYS[1], 'meta|lastError', ARGV[5], 'meta|lastErrorAt', ARGV[6])
end
return 1`,
  parse: reply.integer
})

function argsOf (batch: SentBatch): Array<string | number> {
  const args: Array<string | number> = [
    batch.seq,
    batch.since,
    batch.createdAt,
    batch.lastCallAt ?? '',
    batch.lastError ? JSON.stringify(batch.lastError) : '',
    batch.lastError ? Date.parse(batch.lastError.at) : 0,
    SEQUENCE_TTL_MS
  ]
  for (const [field, delta] of batch.deltas) {
    const name = field.slice(field.lastIndexOf('|') + 1)
    args.push(field, isCounterField(name) && FLOAT_FIELDS.has(name) ? 'f' : 'i', String(delta))
  }
  return args
}

export interface StatsFlushOptions {
  redis: Redis
  keyOf(agent: string): string
  keyPrefix: string
  flushMs: number
  log?: { warn(obj: object, msg: string): void }
}

export class StatsFlush {
  private pending = new Map<string, Batch>()
  /** Per agent, the batch sent and not yet confirmed (at most one: the next waits for it). */
  private readonly sent = new Map<string, SentBatch>()
  private readonly sequenceKey: string
  private readonly timer: NodeJS.Timeout
  private pendingFields = 0
  private seq = 0
  private chain: Promise<void> = Promise.resolve()
  /** Flushes queued or running: a tick finding one under way (Redis slow) is skipped, not queued. */
  private queued = 0
  /** Pipelines sent so far (for tests and diagnostics). */
  flushes = 0
  /** Increments left out of the cluster totals because the pending buffer was full. */
  dropped = 0

  constructor (private readonly options: StatsFlushOptions) {
    this.sequenceKey = `${options.keyPrefix}agent-stats-seq:${randomUUID()}`
    this.timer = setInterval(() => { if (this.queued === 0) this.flush().catch(() => {}) }, options.flushMs)
    this.timer.unref()
  }

  /**
   * Merges one record's increments into the agent's pending batch; `call` marks a finished invocation
   * (`meta|lastCallAt`, and `meta|lastError` when it failed).
   */
  add (
    agent: string,
    increments: Increment[],
    now: number,
    createdAt: number,
    call?: { error: LastError | null }
  ): void {
    let batch = this.pending.get(agent)
    if (!batch) {
      batch = { since: now, deltas: new Map(), lastCallAt: null, lastError: null, createdAt }
      this.pending.set(agent, batch)
    }
    for (const [field, delta] of increments) {
      const current = batch.deltas.get(field)
      if (current !== undefined) { batch.deltas.set(field, current + delta); continue }
      if (this.pendingFields >= MAX_PENDING_FIELDS) { this.dropped++; continue }
      batch.deltas.set(field, delta)
      this.pendingFields++
    }
    if (call) {
      batch.lastCallAt = now
      if (call.error) batch.lastError = call.error
    }
  }

  /**
   * Deltas of this agent that a Redis read made now would not include: pending ones and a batch whose
   * send failed. A batch in flight was written before the read, so Redis applies it first.
   */
  unsent (agent: string): Array<[string, number]> {
    const out: Array<[string, number]> = []
    const sent = this.sent.get(agent)
    if (sent && !sent.inFlight) out.push(...sent.deltas)
    const pending = this.pending.get(agent)
    if (pending) out.push(...pending.deltas)
    return out
  }

  /**
   * A reset: drops the agent's deltas that started at or before `resetAt` (all of them when omitted), as
   * the script would. A batch in flight is forgotten too (the script drops it: it predates the reset).
   */
  drop (agent: string, resetAt = Infinity): void {
    const pending = this.pending.get(agent)
    if (pending && pending.since <= resetAt) {
      this.pendingFields -= pending.deltas.size
      this.pending.delete(agent)
    }
    const sent = this.sent.get(agent)
    if (sent && sent.since <= resetAt) this.sent.delete(agent)
  }

  /** Sends the pending deltas in one pipeline (after any flush under way); never rejects. */
  flush (): Promise<void> {
    this.queued++
    this.chain = this.chain.then(() => this.flushOnce()).finally(() => { this.queued-- })
    return this.chain
  }

  /** Stops the timer and flushes what is pending (a graceful stop loses nothing while Redis answers). */
  async close (): Promise<void> {
    clearInterval(this.timer)
    await this.flush()
  }

  private async flushOnce (): Promise<void> {
    const { redis } = this.options
    const breaker = breakerFor(redis)
    if (!breaker.usable()) return
    const batches: Array<[string, SentBatch]> = []
    for (const [agent, batch] of this.sent) batches.push([agent, batch])
    for (const [agent, batch] of this.pending) {
      if (this.sent.has(agent)) continue // waits for the unconfirmed one: sequence numbers apply in order
      const sent = { ...batch, seq: ++this.seq, inFlight: false }
      this.sent.set(agent, sent)
      this.pending.delete(agent)
      this.pendingFields -= batch.deltas.size
      batches.push([agent, sent])
    }
    if (batches.length === 0) return
    const pipeline = redis.pipeline()
    for (const [agent, batch] of batches) {
      batch.inFlight = true
      APPLY.queue(pipeline, [this.options.keyOf(agent), this.sequenceKey], argsOf(batch))
    }
    this.flushes++
    const started = performance.now()
    try {
      const results = await pipeline.exec()
      batches.forEach(([agent, batch], i) => this.settle(agent, batch, results?.[i]?.[0] ?? null, started))
    } catch (error) {
      for (const [agent, batch] of batches) this.settle(agent, batch, error, started)
    }
  }

  /** Confirmed (or refused by Redis itself: a bug, not retried) → forgotten; unreachable → kept for a retry. */
  private settle (agent: string, batch: SentBatch, error: unknown, started: number): void {
    batch.inFlight = false
    if (this.sent.get(agent) !== batch) return // reset meanwhile
    if (error && breakerFor(this.options.redis).failure(COMPONENT, error, started)) return
    if (error) this.options.log?.warn({ err: String(error), agent }, 'agent stats: Redis refused a batch; dropped')
    this.sent.delete(agent)
  }
}

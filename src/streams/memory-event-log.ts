// The in-memory event log: the only one without Redis, and the local tier of the Redis one (streams
// generated in this process are read from here by their connections). Events expire STREAM_REPLAY_TTL
// after the last one; at most STREAM_LOG_MAX_EVENTS are kept per stream.
import { isTerminal, type LoggedEvent } from './events.js'
import { assertContiguous, type EventLog, type StreamMeta } from './event-log.js'

interface Entry {
  meta: StreamMeta | null
  events: LoggedEvent[]
  expiresAt: number
  /** Called on every append and when the stream is dropped. */
  subscribers: Set<() => void>
}

const DONE = Promise.resolve()

export interface MemoryLogOptions {
  ttlMs: number
  /** Most events kept per stream; older ones are trimmed (a resume from them reports a gap). */
  maxEvents: number
  now?: () => number
}

export class MemoryEventLog implements EventLog {
  readonly kind = 'memory' as const
  private readonly entries = new Map<string, Entry>()
  private readonly timer: NodeJS.Timeout
  private readonly now: () => number

  constructor (private readonly options: MemoryLogOptions) {
    this.now = options.now ?? Date.now
    this.timer = setInterval(() => this.sweep(), Math.min(options.ttlMs, 30_000))
    this.timer.unref()
  }

  /** The stream's entry while it lives (an expired one is dropped). */
  private entry (streamId: string): Entry | undefined {
    const entry = this.entries.get(streamId)
    if (entry && entry.expiresAt <= this.now()) {
      this.drop(streamId, entry)
      return undefined
    }
    return entry
  }

  /** The stream's entry, created when missing; a write starts its time to live again. */
  private written (streamId: string): Entry {
    let entry = this.entry(streamId)
    if (!entry) {
      entry = { meta: null, events: [], expiresAt: 0, subscribers: new Set() }
      this.entries.set(streamId, entry)
    }
    entry.expiresAt = this.now() + this.options.ttlMs
    return entry
  }

  private drop (streamId: string, entry: Entry): void {
    this.entries.delete(streamId)
    for (const wake of [...entry.subscribers]) wake()
  }

  async create (meta: StreamMeta): Promise<void> {
    this.written(meta.streamId).meta = meta
  }

  async meta (streamId: string): Promise<StreamMeta | null> {
    return this.entry(streamId)?.meta ?? null
  }

  append (streamId: string, event: LoggedEvent): Promise<void> {
    try {
      this.appendNow(streamId, event)
      return DONE
    } catch (error) {
      return Promise.reject(error)
    }
  }

  /** Synchronous append (no promise per event on the hot path); throws when seq does not increase. */
  appendNow (streamId: string, event: LoggedEvent): void {
    const entry = this.written(streamId)
    const last = entry.events.at(-1)
    if (last && event.seq <= last.seq) throw new Error(`stream ${streamId}: seq ${event.seq} is not after ${last.seq}`)
    entry.events.push(event)
    // Trim in slices so a long stream does not shift the array on every event.
    const excess = entry.events.length - this.options.maxEvents
    if (excess > 0 && (excess >= 64 || excess >= this.options.maxEvents / 10)) entry.events.splice(0, excess)
    for (const wake of entry.subscribers) wake()
  }

  async read (streamId: string, afterSeq: number): Promise<LoggedEvent[]> {
    return this.readNow(streamId, afterSeq)
  }

  /** Synchronous read: the local connection writer uses it on every wake-up. */
  readNow (streamId: string, afterSeq: number): LoggedEvent[] {
    const events = this.entry(streamId)?.events
    if (!events || events.length === 0) return []
    // seqs are increasing but may have been trimmed: binary search the first one after afterSeq.
    let lo = 0
    let hi = events.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (events[mid].seq <= afterSeq) lo = mid + 1
      else hi = mid
    }
    return events.slice(lo)
  }

  async firstSeq (streamId: string): Promise<number> {
    return this.entry(streamId)?.events[0]?.seq ?? 0
  }

  async last (streamId: string): Promise<LoggedEvent | null> {
    return this.lastNow(streamId)
  }

  lastNow (streamId: string): LoggedEvent | null {
    return this.entry(streamId)?.events.at(-1) ?? null
  }

  localFor (streamId: string): MemoryEventLog | null {
    return this.has(streamId) ? this : null
  }

  /** Calls `wake` on every append to the stream (and when it is dropped) until unsubscribed. */
  subscribe (streamId: string, wake: () => void): () => void {
    const entry = this.entry(streamId)
    if (!entry) return () => {}
    entry.subscribers.add(wake)
    return () => { entry.subscribers.delete(wake) }
  }

  async drain (): Promise<void> {}

  has (streamId: string): boolean {
    return this.entry(streamId) !== undefined
  }

  /** Resolves when the stream gets an event after now, is dropped, or the signal aborts. */
  waitForEvent (streamId: string, signal: AbortSignal): Promise<void> {
    if (!this.has(streamId) || signal.aborted) return DONE
    return new Promise(resolve => {
      const wake = () => { signal.removeEventListener('abort', wake); unsubscribe(); resolve() }
      const unsubscribe = this.subscribe(streamId, wake)
      signal.addEventListener('abort', wake, { once: true })
    })
  }

  async * follow (streamId: string, afterSeq: number, signal: AbortSignal): AsyncIterable<LoggedEvent> {
    let cursor = afterSeq
    while (!signal.aborted) {
      const events = this.readNow(streamId, cursor)
      assertContiguous(streamId, cursor, events)
      for (const event of events) {
        yield event
        cursor = event.seq
        if (isTerminal(event)) return
      }
      if (!this.has(streamId)) return
      if (events.length === 0) {
        const last = this.lastNow(streamId)
        if (last && isTerminal(last)) return // resumed at or after the end
        await this.waitForEvent(streamId, signal)
      }
    }
  }

  size (): number {
    return this.entries.size
  }

  sweep (): number {
    const now = this.now()
    let removed = 0
    for (const [streamId, entry] of this.entries) {
      if (entry.expiresAt <= now) { this.drop(streamId, entry); removed++ }
    }
    return removed
  }

  async close (): Promise<void> {
    clearInterval(this.timer)
    for (const [streamId, entry] of this.entries) this.drop(streamId, entry)
  }
}

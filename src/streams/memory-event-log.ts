// The in-memory event log: the only one without Redis, and the local tier of the Redis one (streams
// generated in this process are read from here by their connections). Each event is kept as holdEvent holds
// it (a token as its data object, sharing its chunk with the provider call; any other as one flat string of its
// name and data JSON, encoded once, at append; a native connection adds the id and field names as it writes
// it), its seq given by its position (a stream's seqs are contiguous): no event objects, nor an array of seqs,
// per stream.
// Events expire STREAM_REPLAY_TTL after the last one, STREAM_ENDED_REPLAY_TTL once the stream has ended; at
// most STREAM_LOG_MAX_EVENTS are kept per stream. As the Redis log's local tier, events already stored in
// Redis are released (dropped here) once every local reader has passed them; the newest event always stays,
// so the end of a stream is known here.
import { heldEvent, holdEvent, isTerminal, type HeldEvent, type LoggedEvent } from './events.js'
import { assertContiguous, type EventLog, type StreamMeta } from './event-log.js'

/** A local reader (a connection's pump, or a wake-up subscriber at Infinity): holds events after `cursor`. */
export interface LogReader {
  cursor: number
  wake: () => void
}

interface Entry {
  meta: StreamMeta | null
  /** The held events (holdEvent), oldest first: frames[i] is the event of seq `first + i`. */
  frames: HeldEvent[]
  /** seq of frames[0] (0 before the first event). */
  first: number
  /** seq of the terminal event (0 while the stream runs). */
  endSeq: number
  expiresAt: number
  /**
   * Woken on every append and when the stream is dropped; their cursors hold back releases. An exact-size
   * array (concat), replaced on attach and detach: a stream has one reader or a few, and a Set or an array
   * grown by push or spread holds room for 16 or more (about 150 bytes per open stream).
   */
  readers: readonly LogReader[]
  /** Events up to this seq are stored elsewhere (Redis) and may go once every reader has passed them. */
  releasable: number
}

const DONE = Promise.resolve()

export interface MemoryLogOptions {
  ttlMs: number
  /** How long an ended stream stays (for a resume that gets its last events or 204); default ttlMs. */
  endedTtlMs?: number
  /** Most events kept per stream; older ones are trimmed (a resume from them reports a gap). */
  maxEvents: number
  now?: () => number
}

/** The held events after a position, as the pump reads them (no copies). */
export interface HeldFrames {
  frames: readonly HeldEvent[]
  /** seq of frames[0]; frames[i] is the event of seq `first + i`. */
  first: number
  /** Index in frames of the first event after the position. */
  from: number
}

export class MemoryEventLog implements EventLog {
  readonly kind = 'memory' as const
  private readonly entries = new Map<string, Entry>()
  private readonly timer: NodeJS.Timeout
  private readonly now: () => number
  private readonly endedTtlMs: number

  constructor (private readonly options: MemoryLogOptions) {
    this.now = options.now ?? Date.now
    this.endedTtlMs = Math.min(options.endedTtlMs ?? options.ttlMs, options.ttlMs)
    // One shared timer sweeps every stream (no timer per stream).
    this.timer = setInterval(() => this.sweep(), Math.min(this.endedTtlMs, 30_000))
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
      entry = { meta: null, frames: [], first: 0, endSeq: 0, expiresAt: 0, readers: [], releasable: 0 }
      this.entries.set(streamId, entry)
    }
    entry.expiresAt = this.now() + (entry.endSeq ? this.endedTtlMs : this.options.ttlMs)
    return entry
  }

  private drop (streamId: string, entry: Entry): void {
    this.entries.delete(streamId)
    for (const reader of entry.readers) reader.wake()
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

  /**
   * Synchronous append (no promise per event on the hot path); throws unless seq is the one after the last.
   * Returns the event as held (the Redis log stores its data JSON, taken from it: heldData).
   */
  appendNow (streamId: string, event: LoggedEvent): HeldEvent {
    const entry = this.written(streamId)
    const { frames } = entry
    const last = frames.length > 0 ? entry.first + frames.length - 1 : 0
    if (event.seq <= last) throw new Error(`stream ${streamId}: seq ${event.seq} is not after ${last}`)
    if (frames.length === 0) entry.first = event.seq
    else if (event.seq !== last + 1) throw new Error(`stream ${streamId}: seq ${event.seq} skips from ${last}`)
    const frame = holdEvent(event)
    frames.push(frame)
    if (!entry.endSeq && isTerminal(event)) {
      entry.endSeq = event.seq
      entry.expiresAt = this.now() + this.endedTtlMs
    }
    // Trim in slices so a long stream does not shift the arrays on every event.
    const excess = frames.length - this.options.maxEvents
    if (excess > 0 && (excess >= 64 || excess >= this.options.maxEvents / 10)) {
      frames.splice(0, excess)
      entry.first += excess
    }
    for (const reader of entry.readers) reader.wake()
    return frame
  }

  /**
   * Events up to `seq` are stored elsewhere (Redis): drop them here once every local reader has passed
   * them (the newest event stays).
   */
  release (streamId: string, seq: number): void {
    const entry = this.entries.get(streamId)
    if (!entry) return
    if (seq > entry.releasable) entry.releasable = seq
    this.trimReleased(entry)
  }

  private trimReleased (entry: Entry): void {
    const { frames } = entry
    if (entry.releasable === 0 || frames.length <= 1) return
    let limit = Math.min(entry.releasable, entry.first + frames.length - 2) // keep the newest
    for (const reader of entry.readers) if (reader.cursor < limit) limit = reader.cursor
    const count = indexAfter(entry, limit)
    if (count === 0) return
    // The common case (readers keep up): a short array, rebuilt rather than spliced.
    if (count === frames.length - 1 && count < 8) entry.frames = [frames[count]]
    else frames.splice(0, count)
    entry.first += count
  }

  async read (streamId: string, afterSeq: number): Promise<LoggedEvent[]> {
    return this.readNow(streamId, afterSeq)
  }

  /** Synchronous read, decoded from the held events. */
  readNow (streamId: string, afterSeq: number): LoggedEvent[] {
    const held = this.framesAfter(streamId, afterSeq)
    if (!held) return []
    const { frames, first, from } = held
    return frames.slice(from).map((frame, i) => heldEvent(frame, first + from + i))
  }

  /** The held frames after a position (null when the stream is not held): the pump's read, without copies. */
  framesAfter (streamId: string, afterSeq: number): HeldFrames | null {
    const entry = this.entry(streamId)
    if (!entry) return null
    return { frames: entry.frames, first: entry.first, from: indexAfter(entry, afterSeq) }
  }

  async firstSeq (streamId: string): Promise<number> {
    return this.firstSeqNow(streamId)
  }

  firstSeqNow (streamId: string): number {
    return this.entry(streamId)?.first ?? 0 // 0 before the first event; a stream always holds its newest
  }

  async last (streamId: string): Promise<LoggedEvent | null> {
    return this.lastNow(streamId)
  }

  lastNow (streamId: string): LoggedEvent | null {
    const entry = this.entry(streamId)
    const count = entry?.frames.length ?? 0
    return entry && count > 0 ? heldEvent(entry.frames[count - 1], entry.first + count - 1) : null
  }

  /** seq of the stream's terminal event (0 while it runs or when not held). */
  endSeqNow (streamId: string): number {
    return this.entry(streamId)?.endSeq ?? 0
  }

  localFor (streamId: string, _afterSeq?: number): MemoryEventLog | null {
    return this.has(streamId) ? this : null
  }

  /** Calls `wake` on every append to the stream (and when it is dropped) until unsubscribed. */
  subscribe (streamId: string, wake: () => void): () => void {
    const reader = this.attach(streamId, Infinity, wake)
    return reader ? () => this.detach(streamId, reader) : () => {}
  }

  /**
   * A local reader at `cursor`: woken on every append (and when the stream is dropped); events after its
   * cursor are not released until it moves on (advance) or detaches. Null when the stream is not held.
   */
  attach (streamId: string, cursor: number, wake: () => void): LogReader | null {
    const reader = { cursor, wake }
    return this.join(streamId, reader) ? reader : null
  }

  /** attach() with a reader of the caller's own (a pump is one); false when the stream is not held. */
  join (streamId: string, reader: LogReader): boolean {
    const entry = this.entry(streamId)
    if (!entry) return false
    entry.readers = entry.readers.concat(reader)
    return true
  }

  advance (streamId: string, reader: LogReader, cursor: number): void {
    reader.cursor = cursor
    const entry = this.entries.get(streamId)
    if (entry && entry.releasable > 0) this.trimReleased(entry)
  }

  detach (streamId: string, reader: LogReader): void {
    const entry = this.entries.get(streamId)
    if (!entry?.readers.includes(reader)) return
    entry.readers = entry.readers.filter(r => r !== reader)
    if (entry.releasable > 0) this.trimReleased(entry)
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
    let wake: (() => void) | null = null
    const notify = () => {
      const resolve = wake
      wake = null
      resolve?.()
    }
    // A reader, so events after the cursor are not released (Redis tier) while the consumer is busy.
    const reader = this.attach(streamId, cursor, notify)
    if (!reader) return
    signal.addEventListener('abort', notify, { once: true })
    try {
      while (!signal.aborted) {
        const events = this.readNow(streamId, cursor)
        assertContiguous(streamId, cursor, events)
        for (const event of events) {
          yield event
          cursor = event.seq
          this.advance(streamId, reader, cursor)
          if (isTerminal(event)) return
        }
        if (!this.has(streamId)) return
        if (events.length === 0) {
          const end = this.endSeqNow(streamId)
          if (end && end <= cursor) return // resumed at or after the end
          await new Promise<void>(resolve => { wake = resolve })
        }
      }
    } finally {
      this.detach(streamId, reader)
      signal.removeEventListener('abort', notify)
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

/** Index in the entry's frames of the first event after `afterSeq`. */
function indexAfter (entry: Entry, afterSeq: number): number {
  return Math.min(Math.max(afterSeq + 1 - entry.first, 0), entry.frames.length)
}

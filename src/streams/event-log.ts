// The stream event log: every event of a stream is appended here and connections read it back, so
// replay after a reconnect, resume on another replica and slow readers all use one path. This module
// holds the interface; memory-event-log.ts and redis-event-log.ts implement it.
import type { LoggedEvent } from './events.js'
import type { MemoryEventLog } from './memory-event-log.js'

/** What a resume needs to know about a stream, wherever it runs. */
export interface StreamMeta {
  streamId: string
  ownerId: string
  agent: string
  method: string
  createdAt: number
  onDisconnect: 'cancel' | 'continue'
  /** Instance running the generation (for diagnostics). */
  instanceId: string
}

/** A reader fell so far behind that events it had not read were trimmed (STREAM_LOG_MAX_EVENTS). */
export class StreamGapError extends Error {
  constructor (readonly streamId: string, readonly afterSeq: number, readonly firstSeq: number) {
    super(`stream ${streamId}: events ${afterSeq + 1}–${firstSeq - 1} were trimmed before they were read`)
    this.name = 'StreamGapError'
  }
}

/** Throws when the events read do not continue right after `cursor`. */
export function assertContiguous (streamId: string, cursor: number, events: LoggedEvent[]): void {
  if (events.length > 0 && events[0].seq > cursor + 1) throw new StreamGapError(streamId, cursor, events[0].seq)
}

export interface EventLog {
  readonly kind: 'memory' | 'redis'
  create(meta: StreamMeta): Promise<void>
  meta(streamId: string): Promise<StreamMeta | null>
  /** Appends one event; seq must be the one after the stream's last (the first may be any positive seq). */
  append(streamId: string, event: LoggedEvent): Promise<void>
  /** Events with seq > afterSeq, oldest first. */
  read(streamId: string, afterSeq: number): Promise<LoggedEvent[]>
  /** The newest event held, if any (is the stream finished?). */
  last(streamId: string): Promise<LoggedEvent | null>
  /** Lowest seq still held (0 when the stream holds none): a resume from below it has a gap. */
  firstSeq(streamId: string): Promise<number>
  /**
   * Events with seq > afterSeq, then live ones, until a terminal event or the signal aborts. Throws
   * StreamGapError when events the reader had not reached were trimmed.
   */
  follow(streamId: string, afterSeq: number, signal: AbortSignal): AsyncIterable<LoggedEvent>
  /**
   * The in-process log holding this stream's events after `afterSeq`, when it is generated here
   * (connections read it directly); null when they must be read from the shared log.
   */
  localFor(streamId: string, afterSeq?: number): MemoryEventLog | null
  /** Waits until every appended event is stored (Redis writes are batched). */
  drain(): Promise<void>
  /** Streams held (memory) — for stats. */
  size(): number
  /** Drops expired streams now; returns how many. */
  sweep(): number
  close(): Promise<void>
}

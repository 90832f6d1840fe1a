// Copies a stream from the event log to one connection. A stream generated in this process is read
// straight from the memory log: what is available goes out in one write (up to a batch size) of the
// events the log encoded once at append (their ids and field names added), then the pump sleeps until the
// next append — no promise, listener or JSON encode per event, and nothing parked between events. Any
// other stream (generated on another replica) is read through EventLog.follow (XRANGE, then XREAD BLOCK).
// Both stop at the terminal event, a disconnect or shutdown, and wait for 'drain' whenever the client is behind.
import type { SseConnection } from './connection.js'
import { eventId, heldEvent, isTerminal, nativeFrame, nativeWire } from './events.js'
import { StreamGapError, type EventLog } from './event-log.js'
import type { LogReader, MemoryEventLog } from './memory-event-log.js'

/**
 * Largest write while catching up; bigger backlogs go out in several writes, each waiting for drain. 64 KB holds
 * a whole streamed answer of the usual size, which at 16 KB went out in two or three writes (a syscall each, on
 * loopback about 40 µs of the server's CPU; issue 16).
 */
const BATCH_BYTES = 64 * 1024

/**
 * Most appends a paced connection lets wait for the pacer's tick: a faster producer is written at once, so
 * pacing never lets a connection fall behind the log's cap (STREAM_LOG_MAX_EVENTS, at least 100).
 */
const MAX_PACED_EVENTS = 32

/** Connections one pacer tick writes before it lets the event loop run I/O. */
const TICK_BATCH = 256

/** How a pump ends: after the terminal event, a disconnect or shutdown (no error), or with the error. */
export type PumpEnd = (error?: unknown) => void

/**
 * Write coalescing (STREAM_FLUSH_MS): a connection writes at once when its last write is at least
 * `intervalMs` old, and otherwise at the next tick of one timer shared by every connection. So an event waits
 * at most `intervalMs`, the first event after a quiet spell not at all, and deltas that arrive faster (a
 * fast model, a burst after a slow consumer) go out together: one socket write per interval instead of one
 * per delta — each write is a syscall, on loopback about 40 µs of the server's CPU. 0 writes every wake at once.
 */
export class WritePacer {
  private due: Array<() => void> = []
  private timer: NodeJS.Timeout | null = null
  /** The rest of a tick's connections, after the event loop's I/O (TICK_BATCH). */
  private rest: NodeJS.Immediate | null = null

  constructor (readonly intervalMs: number) {}

  /** Whether a connection that last wrote at `lastWriteAt` (performance.now()) must wait for the shared tick. */
  mustWait (lastWriteAt: number): boolean {
    return this.intervalMs > 0 && performance.now() - lastWriteAt < this.intervalMs
  }

  /** Runs `run` at the next shared tick. */
  later (run: () => void): void {
    this.due.push(run)
    if (!this.timer && !this.rest) this.timer = setTimeout(this.tick, this.intervalMs)
  }

  /**
   * Runs the waiting connections, TICK_BATCH at a time with the loop's I/O in between, so that thousands of
   * connections due at one tick never hold the loop (a probe, other requests) for all their writes.
   */
  private readonly tick = () => {
    this.timer = this.rest = null
    const due = this.due.splice(0, TICK_BATCH)
    for (const run of due) run()
    if (this.due.length > 0 && !this.timer) this.rest = setImmediate(this.tick)
  }

  /** Runs what waits now (shutdown: nothing is left on a timer). */
  flush (): void {
    if (this.timer) clearTimeout(this.timer)
    if (this.rest) clearImmediate(this.rest)
    this.timer = this.rest = null
    const due = this.due
    this.due = []
    for (const run of due) run()
  }
}

const IMMEDIATE = new WritePacer(0)

/**
 * Copies a stream generated in this process from the memory log to one connection, calling `end` once when
 * done. Callback-driven: between events nothing of it is parked (no async frame or promise per open stream,
 * about a kilobyte each); an append and the connection ending wake it, and the client catching up ('drain')
 * runs it, writing what is held after the cursor.
 */
export function pumpLocal (
  connection: SseConnection,
  log: MemoryEventLog,
  streamId: string,
  afterSeq: number,
  end: PumpEnd,
  pacer: WritePacer = IMMEDIATE
): void {
  new LocalPump(connection, log, streamId, afterSeq, end, pacer).start()
}

/**
 * One connection's pump: its state in one object, and two callbacks (wake, run) sharing it; it is also its own
 * reader of the log (its cursor holds back releases). As closures over a function's locals it held four
 * closures, two contexts and a reader object per open stream (about 0.45 KB); this is about 0.25 KB.
 */
class LocalPump implements LogReader {
  private waitingDrain = false
  private scheduled: 'now' | 'later' | false = false
  private lastWriteAt = -Infinity
  private waiting = 0 // appends since the last run
  /** The native wire writes the log's own encoding (made once, at append); another wire decodes it. */
  private readonly native: boolean
  private reading = false

  constructor (
    private readonly connection: SseConnection,
    private readonly log: MemoryEventLog,
    private readonly streamId: string,
    /** The last seq written (the reader's position). */
    public cursor: number,
    private readonly end: PumpEnd,
    private readonly pacer: WritePacer
  ) {
    this.native = connection.wire === nativeWire
  }

  start (): void {
    // A reader before the first read, so nothing after the cursor is released (Redis tier) under it.
    this.reading = this.log.join(this.streamId, this)
    if (!this.reading) {
      this.end()
      return
    }
    this.connection.onEnd(this.wake)
    this.run()
  }

  private finish (error?: unknown): void {
    if (!this.reading) return
    this.log.detach(this.streamId, this)
    this.reading = false
    this.connection.offEnd(this.wake)
    this.end(error)
  }

  /**
   * Events appended in one turn go out in one write: a wake runs the pump once, after the appender's turn.
   * Within the pacer's interval of the last write it runs at the pacer's next tick instead, unless the
   * stream has ended or the connection has (nothing more is coming: the rest goes out at once), or
   * MAX_PACED_EVENTS are waiting.
   */
  readonly wake = (): void => {
    if (this.scheduled === 'now') return
    if (
      ++this.waiting >= MAX_PACED_EVENTS ||
      !this.pacer.mustWait(this.lastWriteAt) ||
      this.log.endSeqNow(this.streamId) > 0 ||
      !this.connection.isOpen
    ) {
      this.scheduled = 'now' // a pacer tick still due finds nothing, or only what arrived since, to write
      queueMicrotask(this.run)
    } else if (!this.scheduled) {
      this.scheduled = 'later'
      this.pacer.later(this.run)
    }
  }

  private readonly run = (): void => {
    this.scheduled = false
    this.waiting = 0
    if (!this.reading || this.waitingDrain) return
    let done: boolean
    try {
      done = this.writeHeld()
    } catch (error) {
      this.finish(error)
      return
    }
    if (done) this.finish()
  }

  /** Writes what is held; true when the pump is done (terminal event written, stream gone, connection ended). */
  private writeHeld (): boolean {
    const { connection, log, streamId } = this
    while (connection.isOpen) {
      const held = log.framesAfter(streamId, this.cursor)
      if (!held) return true
      const { frames, first, from } = held
      const endSeq = log.endSeqNow(streamId)
      if (from >= frames.length) return endSeq > 0 && endSeq <= this.cursor // else: asleep until the next append
      if (first + from > this.cursor + 1) throw new StreamGapError(streamId, this.cursor, first + from)
      let out = ''
      let ended = false
      let cursor = this.cursor
      for (let i = from; i < frames.length; i++) {
        cursor = first + i
        out += this.native
          ? nativeFrame(streamId, cursor, frames[i])
          : connection.wire.event(streamId, heldEvent(frames[i], cursor))
        ended = cursor === endSeq
        if (ended || out.length >= BATCH_BYTES) break
      }
      this.cursor = cursor
      const sent = connection.send(out, eventId(streamId, cursor))
      this.lastWriteAt = performance.now()
      log.advance(streamId, this, cursor)
      if (ended) return true
      if (!sent) {
        this.waitingDrain = true
        connection.drained().then(open => {
          this.waitingDrain = false
          if (open) this.run()
          else this.finish()
        }, error => this.finish(error))
        return false
      }
    }
    return true
  }
}

export async function pumpFollow (
  connection: SseConnection,
  log: EventLog,
  streamId: string,
  afterSeq: number
): Promise<void> {
  for await (const event of log.follow(streamId, afterSeq, connection.signal)) {
    const sent = connection.send(connection.wire.event(streamId, event), eventId(streamId, event.seq))
    if (!sent && !(await connection.drained())) return
    if (isTerminal(event)) return
  }
}

// Copies a stream from the event log to one connection. A stream generated in this process is read
// straight from the memory log: what is available goes out in one write (up to a batch size) of the
// frames the log encoded once at append, then the pump sleeps until the next append — no promise,
// listener or encode per event, and nothing parked between events. Any other stream (generated on
// another replica) is read through EventLog.follow (XRANGE, then XREAD BLOCK). Both stop at the
// terminal event, a disconnect or shutdown, and wait for 'drain' whenever the client is behind.
import type { SseConnection } from './connection.js'
import { decodeFrame, eventId, isTerminal, nativeWire } from './events.js'
import { StreamGapError, type EventLog } from './event-log.js'
import type { LogReader, MemoryEventLog } from './memory-event-log.js'

/** Largest write while catching up; bigger backlogs go out in several writes, each waiting for drain. */
const BATCH_BYTES = 16 * 1024

/** How a pump ends: after the terminal event, a disconnect or shutdown (no error), or with the error. */
export type PumpEnd = (error?: unknown) => void

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
  end: PumpEnd
): void {
  let cursor = afterSeq
  let waitingDrain = false
  let scheduled = false
  // The native wire writes the log's own frames (encoded once, at append); another wire decodes them.
  const native = connection.wire === nativeWire
  let reader: LogReader | null = null
  const finish = (error?: unknown) => {
    if (!reader) return
    log.detach(streamId, reader)
    reader = null
    connection.offEnd(wake)
    end(error)
  }
  /** Writes what is held; true when the pump is done (terminal event written, stream gone, connection ended). */
  const writeHeld = (): boolean => {
    while (connection.isOpen) {
      const held = log.framesAfter(streamId, cursor)
      if (!held) return true
      const { seqs, frames, from } = held
      const endSeq = log.endSeqNow(streamId)
      if (from >= seqs.length) return endSeq > 0 && endSeq <= cursor // else: asleep until the next append
      if (seqs[from] > cursor + 1) throw new StreamGapError(streamId, cursor, seqs[from])
      let out = ''
      let ended = false
      for (let i = from; i < seqs.length; i++) {
        out += native ? frames[i] : connection.wire.event(streamId, decodeFrame(frames[i]))
        cursor = seqs[i]
        ended = cursor === endSeq
        if (ended || out.length >= BATCH_BYTES) break
      }
      const sent = connection.send(out, eventId(streamId, cursor))
      log.advance(streamId, reader!, cursor)
      if (ended) return true
      if (!sent) {
        waitingDrain = true
        connection.drained().then(open => {
          waitingDrain = false
          if (open) run()
          else finish()
        }, finish)
        return false
      }
    }
    return true
  }
  /** Events appended in one turn go out in one write: a wake runs the pump once, after the appender's turn. */
  const wake = () => {
    if (scheduled) return
    scheduled = true
    queueMicrotask(run)
  }
  function run (): void {
    scheduled = false
    if (!reader || waitingDrain) return
    let done: boolean
    try {
      done = writeHeld()
    } catch (error) {
      finish(error)
      return
    }
    if (done) finish()
  }
  // Attached before the first read, so nothing after the cursor is released (Redis tier) under this reader.
  reader = log.attach(streamId, cursor, wake)
  if (!reader) {
    end()
    return
  }
  connection.onEnd(wake)
  run()
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

// Copies a stream from the event log to one connection. A stream generated in this process is read
// straight from the memory log: what is available goes out in one write (up to a batch size) of the
// frames the log encoded once at append, then the pump sleeps until the next append — no promise,
// listener or encode per event. Any other stream (generated on
// another replica) is read through EventLog.follow (XRANGE, then XREAD BLOCK). Both stop at the
// terminal event, a disconnect or shutdown, and wait for 'drain' whenever the client is behind.
import type { SseConnection } from './connection.js'
import { decodeFrame, eventId, isTerminal, nativeWire } from './events.js'
import { StreamGapError, type EventLog } from './event-log.js'
import type { MemoryEventLog } from './memory-event-log.js'

/** Largest write while catching up; bigger backlogs go out in several writes, each waiting for drain. */
const BATCH_BYTES = 16 * 1024

export async function pumpLocal (
  connection: SseConnection,
  log: MemoryEventLog,
  streamId: string,
  afterSeq: number
): Promise<void> {
  let cursor = afterSeq
  let wake: (() => void) | null = null
  const notify = () => {
    const resolve = wake
    wake = null
    resolve?.()
  }
  // Attached before the first read, so nothing after the cursor is released (Redis tier) under this reader.
  const reader = log.attach(streamId, cursor, notify)
  if (!reader) return
  // The native wire writes the log's own frames (encoded once, at append); another wire decodes them.
  const native = connection.wire === nativeWire
  connection.onEnd(notify)
  try {
    while (connection.isOpen) {
      const held = log.framesAfter(streamId, cursor)
      if (!held) return
      const { seqs, frames, from } = held
      if (from >= seqs.length) {
        const end = log.endSeqNow(streamId)
        if (end && end <= cursor) return
        await new Promise<void>(resolve => {
          wake = resolve
        })
        continue
      }
      if (seqs[from] > cursor + 1) throw new StreamGapError(streamId, cursor, seqs[from])
      const end = log.endSeqNow(streamId)
      let out = ''
      let ended = false
      for (let i = from; i < seqs.length; i++) {
        out += native ? frames[i] : connection.wire.event(streamId, decodeFrame(frames[i]))
        cursor = seqs[i]
        ended = cursor === end
        if (ended || out.length >= BATCH_BYTES) break
      }
      const sent = connection.send(out, eventId(streamId, cursor))
      log.advance(streamId, reader, cursor)
      if (!sent && !(await connection.drained())) return
      if (ended) return
    }
  } finally {
    log.detach(streamId, reader)
    connection.offEnd(notify)
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

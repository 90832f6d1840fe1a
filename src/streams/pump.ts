// Copies a stream from the event log to one connection. A stream generated in this process is read
// straight from the memory log: what is available goes out in one write (up to a batch size), then the
// pump sleeps until the next append — no promise or listener per event. Any other stream (generated on
// another replica) is read through EventLog.follow (XRANGE, then XREAD BLOCK). Both stop at the
// terminal event, a disconnect or shutdown, and wait for 'drain' whenever the client is behind.
import type { SseConnection } from './connection.js'
import { eventId, isTerminal } from './events.js'
import { assertContiguous, type EventLog } from './event-log.js'
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
  const unsubscribe = log.subscribe(streamId, notify)
  connection.signal.addEventListener('abort', notify, { once: true })
  try {
    while (connection.isOpen) {
      const events = log.readNow(streamId, cursor)
      if (events.length === 0) {
        const last = log.lastNow(streamId)
        if (!log.has(streamId) || (last && isTerminal(last))) return
        await new Promise<void>(resolve => {
          wake = resolve
        })
        continue
      }
      assertContiguous(streamId, cursor, events)
      let frames = ''
      let ended = false
      for (const event of events) {
        frames += connection.wire.event(streamId, event)
        cursor = event.seq
        ended = isTerminal(event)
        if (ended || frames.length >= BATCH_BYTES) break
      }
      if (!connection.send(frames, eventId(streamId, cursor)) && !(await connection.drained())) return
      if (ended) return
    }
  } finally {
    unsubscribe()
    connection.signal.removeEventListener('abort', notify)
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

// A workflow run as Server-Sent Events: `run-started`, then the engine's `step-started`, `token`,
// `step-completed` / `step-failed` in order, then `complete` with the whole run. Frames use the stream
// module's encoder and connection writer (backpressure, heartbeats, client-gone detection); ids are
// `<runId>-<seq>`. A client that goes away cancels the run it started (not one it joined).
import type { ServerResponse } from 'node:http'
import { SseConnection } from '../streams/connection.js'
import { encodeFrame, type StreamEvent } from '../streams/events.js'
import { toStepError } from './engine.js'
import type { RunHandle } from './service.js'

export interface SseOptions { heartbeatMs: number, retryMs: number }

/** The stream encoder is typed for the agent-stream vocabulary; its framing is the same for these event names. */
const frame = (id: string, event: string, data: unknown) => encodeFrame(id, { event, data } as unknown as StreamEvent)

/** Streams a run on a response taken over with openSse (src/routes/toolkit.ts), whose `headers` it opens with. */
export async function streamRun (
  res: ServerResponse,
  headers: Record<string, string | string[] | number>,
  handle: RunHandle,
  options: SseOptions
): Promise<void> {
  const { runId } = handle
  const connection = new SseConnection(res, runId, 0)
  connection.open(headers, options.retryMs)
  let seq = 0
  let writing: Promise<unknown> = Promise.resolve()
  const send = (event: string, data: unknown) => {
    const id = `${runId}-${++seq}`
    const text = frame(id, event, data)
    writing = writing.then(() => connection.write(text, id))
  }

  send('run-started', {
    runId,
    strategy: handle.strategy,
    ...(handle.workflowName ? { workflowName: handle.workflowName } : {}),
    replayed: handle.replayed,
    steps: handle.steps.map(step => ({ runId, ...step }))
  })
  const unsubscribe = handle.subscribe?.(event => send(event.event, { runId, ...event.data })) ?? (() => {})
  const heartbeat = setInterval(() => connection.heartbeat(), options.heartbeatMs)
  connection.signal.addEventListener(
    'abort',
    () => {
      if (connection.endReason === 'client-closed') handle.cancel()
    },
    { once: true }
  )
  try {
    send('complete', await handle.done)
  } catch (error) {
    const known = toStepError(error)
    send('error', { runId, code: known.code, message: known.message, recoverable: known.code === 'AMK_CONFLICT' })
  } finally {
    unsubscribe()
    clearInterval(heartbeat)
    await writing
    connection.end()
  }
}

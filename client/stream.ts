// The SDK's typed streams: POST /api/stream/<route> read with fetch (Node ≥ 20 and browsers), yielding
// `{ id, event, data }` frames whose `data` is narrowed by `event`. A dropped connection reconnects with
// Last-Event-ID and continues without duplicates; aborting the signal cancels the generation on the server.
import type { components, paths } from './schema.js'

/** One Server-Sent Event: a union discriminated by `event`. */
export type StreamEvent = components['schemas']['StreamEvent']
export type StreamEventName = StreamEvent['event']
export type StreamRoute = 'blog' | 'itinerary' | 'recommendations' | 'social'
/** The body of a stream route: the agent method's input (onDisconnect is set by the SDK). */
export type StreamInput<R extends StreamRoute> = Omit<
  NonNullable<paths[`/api/stream/${R}`]['post']['requestBody']>['content']['application/json'],
  'onDisconnect'
>

export interface StreamOptions {
  /** Aborting stops reading and cancels the generation (POST /api/stream/{streamId}/cancel). */
  signal?: AbortSignal
  /** Resume a stream from an id it yielded earlier (e.g. after a page reload). */
  lastEventId?: string
  /** Reconnects in a row without a new event before giving up (default 5). */
  maxReconnects?: number
  /** Wait before each reconnect, ms (default 250). */
  reconnectDelayMs?: number
}

/** An HTTP error answer of a stream route (`body` is the API's error shape when it sent one). */
export class StreamHttpError extends Error {
  constructor (readonly status: number, readonly body: components['schemas']['ErrorResponse'] | undefined) {
    super(body?.message ?? `stream request failed with HTTP ${status}`)
    this.name = 'StreamHttpError'
  }
}

export interface StreamTransport {
  baseUrl: string
  headers: () => Record<string, string>
  fetch: typeof globalThis.fetch
}

const NAMES: ReadonlySet<string> = new Set<StreamEventName>([
  'connected',
  'progress',
  'token',
  'partial',
  'post',
  'result',
  'usage',
  'failure',
  'complete'
])
const isStreamEvent = (frame: { event: string }): frame is StreamEvent => NAMES.has(frame.event)
const seqOf = (id: string | undefined) => (id ? Number(id.slice(id.lastIndexOf('-') + 1)) : 0)
const isErrorBody = (body: unknown): body is components['schemas']['ErrorResponse'] =>
  typeof body === 'object' && body !== null && 'code' in body && 'message' in body
const errorBody = async (response: Response) => {
  const body: unknown = await response.json().catch(() => undefined)
  return isErrorBody(body) ? body : undefined
}
const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))

/** Parses a text/event-stream body into frames (comments and `retry:` skipped; a cut-off last frame dropped). */
export async function * readFrames (
  body: ReadableStream<Uint8Array>
): AsyncGenerator<{ id?: string; event: string; data: unknown }> {
  const reader = body.getReader()
  const decoder = new TextDecoder()
  let buffer = ''
  try {
    while (true) {
      const { value, done } = await reader.read()
      if (done) return
      buffer += decoder.decode(value, { stream: true })
      const blocks = buffer.split(/\r\n\r\n|\n\n|\r\r/)
      buffer = blocks.pop() ?? ''
      for (const block of blocks) {
        let id: string | undefined
        let event = 'message'
        const data: string[] = []
        for (const line of block.split(/\r\n|\n|\r/)) {
          const colon = line.indexOf(':')
          if (colon === 0) continue
          const field = colon < 0 ? line : line.slice(0, colon)
          const text = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '')
          if (field === 'id') id = text
          else if (field === 'event') event = text
          else if (field === 'data') data.push(text)
        }
        if (data.length > 0) yield { id, event, data: JSON.parse(data.join('\n')) }
      }
    }
  } finally {
    await reader.cancel().catch(() => {})
  }
}

/**
 * Streams one generation. The SDK asks for onDisconnect `continue`, so a network drop leaves the generation
 * running and the reconnect (same route, Last-Event-ID) replays what was missed; ids at or below the last one
 * yielded are skipped. Ends after `complete` or a terminal `failure`; SHUTTING_DOWN only means "reconnect".
 */
export async function * openStream<R extends StreamRoute> (
  transport: StreamTransport,
  route: R,
  input: StreamInput<R>,
  options: StreamOptions = {}
): AsyncGenerator<StreamEvent> {
  const { signal, maxReconnects = 5, reconnectDelayMs = 250 } = options
  let lastEventId = options.lastEventId
  let streamId = lastEventId ? lastEventId.slice(0, lastEventId.lastIndexOf('-')) : undefined
  let cancelling: Promise<unknown> | undefined
  const cancel = () => {
    if (streamId && !cancelling) {
      cancelling = transport
        .fetch(`${transport.baseUrl}/api/stream/${streamId}/cancel`, { method: 'POST', headers: transport.headers() })
        .catch(() => {})
    }
  }
  signal?.addEventListener('abort', cancel, { once: true })
  const aborted = async () => {
    cancel()
    await cancelling
    return signal?.reason
  }
  try {
    for (let attempt = 0; ; attempt++) {
      if (signal?.aborted) throw await aborted()
      if (attempt > maxReconnects) throw new Error(`stream connection lost ${attempt} times in a row`)
      if (attempt > 0) await sleep(reconnectDelayMs)
      try {
        const response = await transport.fetch(`${transport.baseUrl}/api/stream/${route}`, {
          method: 'POST',
          headers: {
            ...transport.headers(),
            'content-type': 'application/json',
            accept: 'text/event-stream',
            ...(lastEventId ? { 'last-event-id': lastEventId } : {})
          },
          body: JSON.stringify({ ...input, onDisconnect: 'continue' }),
          signal
        })
        if (response.status === 204) return // resumed at the end: nothing follows
        if (!response.ok || !response.body) throw new StreamHttpError(response.status, await errorBody(response))
        for await (const frame of readFrames(response.body)) {
          if (!isStreamEvent(frame) || frame.id === undefined) continue
          if (frame.event === 'failure' && frame.data.code === 'SHUTTING_DOWN') break
          if (lastEventId && seqOf(frame.id) <= seqOf(lastEventId)) continue
          lastEventId = frame.id
          attempt = 0
          if (frame.event === 'connected') streamId = frame.data.streamId
          yield frame
          if (frame.event === 'complete' || frame.event === 'failure') return
        }
      } catch (error) {
        if (signal?.aborted) throw await aborted()
        if (error instanceof StreamHttpError) throw error
        // a network error: reconnect
      }
    }
  } finally {
    signal?.removeEventListener('abort', cancel)
  }
}

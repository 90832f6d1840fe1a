// The SSE event vocabulary (DESIGN §8) as one typed union, and the one encoder that turns events,
// comments and the retry hint into text/event-stream frames. Framework-free.

export interface StreamUsage {
  inputTokens: number
  outputTokens: number
  costUsd: number
  model?: string
  estimated?: boolean
}

export interface StreamEventMap {
  connected: { streamId: string, agent: string, method: string, resumed?: boolean }
  progress: { progress: number, message: string }
  token: { chunk: string, index: number }
  partial: { data: unknown }
  post: { platform: string, content: string, index: number }
  result: { data: unknown }
  usage: StreamUsage
  error: { code: string, message: string, recoverable: boolean, lastEventId?: string }
  complete: { durationMs: number, usage: StreamUsage }
}

export type StreamEventName = keyof StreamEventMap

/** One event as the generator produces it (no id yet). */
export type StreamEvent = { [K in StreamEventName]: { event: K, data: StreamEventMap[K] } }[StreamEventName]

/** One event as logged: `seq` is strictly increasing within its stream, from 1. */
export type LoggedEvent = StreamEvent & { seq: number }

export const STREAM_EVENT_NAMES: readonly StreamEventName[] = [
  'connected',
  'progress',
  'token',
  'partial',
  'post',
  'result',
  'usage',
  'error',
  'complete'
]

/**
 * The `event:` field on the wire. A server failure goes out as `failure`: an SSE event named `error`
 * fires EventSource.onerror, which a page could not tell from a lost connection. The log keeps the
 * internal name, so logs written before the rename (or by an older replica) replay under the new one.
 */
export function wireName (name: StreamEventName): string {
  return name === 'error' ? 'failure' : name
}

/** The internal name of a wire event name (`failure` → `error`); other names pass through. */
export function fromWireName (name: string): string {
  return name === 'failure' ? 'error' : name
}

/** Error codes carried by `error` events (not HTTP errors). */
export const StreamErrorCode = {
  /** Connection-only: the server is going down; reconnect with Last-Event-ID (another replica serves it). */
  SHUTTING_DOWN: 'SHUTTING_DOWN',
  /** Terminal, logged: the generation was aborted by a cancel or a client disconnect. */
  CANCELLED: 'CANCELLED',
  /** Terminal, logged: the instance running the generation shut down before it finished. */
  INTERRUPTED: 'GENERATION_INTERRUPTED'
} as const

/** The terminal event of a generation whose instance went away (`how`: shut down, stopped). */
export function interruptedEvent (how: string): StreamEvent {
  return {
    event: 'error',
    data: {
      code: StreamErrorCode.INTERRUPTED,
      message: `The instance running this generation ${how} before it finished; start a new stream`,
      recoverable: false
    }
  }
}

/** `complete` and `error` end a stream's log; SHUTTING_DOWN is never logged, so it never ends one. */
export function isTerminal (event: StreamEvent): boolean {
  return event.event === 'complete' || (event.event === 'error' && event.data.code !== StreamErrorCode.SHUTTING_DOWN)
}

/** `<streamId>-<seq>`: the SSE id, so a browser's Last-Event-ID names the stream and the position. */
export function eventId (streamId: string, seq: number): string {
  return `${streamId}-${seq}`
}

/** Parses a Last-Event-ID; null when it is not of the form `<streamId>-<seq>`. */
export function parseEventId (id: string | undefined | null): { streamId: string, seq: number } | null {
  if (!id) return null
  const dash = id.lastIndexOf('-')
  if (dash <= 0) return null
  const seq = Number(id.slice(dash + 1))
  if (!Number.isSafeInteger(seq) || seq < 0) return null
  return { streamId: id.slice(0, dash), seq }
}

/**
 * The one SSE frame layout. `data` is JSON on a single line (JSON.stringify never emits raw newlines), so one
 * `data:` field suffices; the id and event name are ours and never contain CR/LF. Frames are written and let go
 * (the memory log holds events as holdEvent makes them), so the pieces are simply concatenated.
 */
function sseFrame (id: string, name: StreamEventName, data: string): string {
  return 'id: ' + id + '\nevent: ' + wireName(name) + '\ndata: ' + data + '\n\n'
}

/** Encodes one logged event as its native frame. */
export function encodeEvent (streamId: string, event: LoggedEvent): string {
  return sseFrame(eventId(streamId, event.seq), event.event, JSON.stringify(event.data))
}

/**
 * An event as the memory log holds it for its stream's life. A token event is held as its own data object,
 * `{ chunk, index }`: its chunk is the very string the provider call keeps to join the answer, so the text is
 * held once, not again inside a JSON copy (40 bytes against the text's length plus about 50). Any other event
 * is one flat string, `<name>\n<data JSON>`. Either way the id (its seq is its position in the log) and the
 * SSE field names are added when it is written (nativeFrame): held in every event, they were about 50 bytes
 * each (issue 16).
 */
export type HeldEvent = string | StreamEventMap['token']

export function holdEvent (event: StreamEvent): HeldEvent {
  if (event.event === 'token') return event.data
  return [event.event, '\n', JSON.stringify(event.data)].join('') // join builds it flat, in one copy
}

/** The name of a held event. */
function heldName (held: HeldEvent): StreamEventName {
  return typeof held === 'string' ? held.slice(0, held.indexOf('\n')) as StreamEventName : 'token'
}

/** The data JSON of a held event (what the Redis log stores, without encoding a string event again). */
export function heldData (held: HeldEvent): string {
  return typeof held === 'string' ? held.slice(held.indexOf('\n') + 1) : JSON.stringify(held)
}

/** The native frame of a held event: what encodeEvent makes of the event itself. */
export function nativeFrame (streamId: string, seq: number, held: HeldEvent): string {
  return sseFrame(eventId(streamId, seq), heldName(held), heldData(held))
}

/** A held event read back, as it was logged (a non-native wire, a reader of LoggedEvents), its data a copy. */
export function heldEvent (held: HeldEvent, seq: number): LoggedEvent {
  if (typeof held !== 'string') return { seq, event: 'token', data: { chunk: held.chunk, index: held.index } }
  const data: unknown = JSON.parse(heldData(held)) // our own JSON, from holdEvent
  return { seq, event: heldName(held), data } as LoggedEvent
}

/** The same frame with an explicit id (the connection-only SHUTTING_DOWN event repeats the last id). */
export function encodeFrame (id: string, event: StreamEvent): string {
  return sseFrame(id, event.event, JSON.stringify(event.data))
}

/**
 * How one connection writes a stream: the native §8 events, or another protocol's frames for the same log
 * (AG-UI, the AI SDK UI message stream: src/protocols). A wire may keep state per connection (a text message
 * opened, a run started), so each connection gets its own. Every frame it writes for a logged event carries
 * that event's id, so Last-Event-ID resumes work the same in every format.
 */
export interface StreamWire {
  /** Response headers this format adds (a protocol's version header). */
  readonly headers: Readonly<Record<string, string>>
  /** The frames for one logged event; '' writes nothing (the position still advances). */
  event(streamId: string, event: LoggedEvent): string
  /** A connection-only notice (SHUTTING_DOWN, STREAM_GAP) that repeats the last delivered id; it is not logged. */
  notice(id: string, event: StreamEvent): string
}

/** The native wire: §8 events as they are logged. */
export const nativeWire: StreamWire = { headers: {}, event: encodeEvent, notice: encodeFrame }

/** A comment line (heartbeat); EventSource ignores it, proxies see traffic. */
export function encodeComment (text: string): string {
  return `: ${text.replace(/[\r\n]+/g, ' ')}\n\n`
}

/** Reconnection delay hint for EventSource. */
export function encodeRetry (ms: number): string {
  return `retry: ${Math.max(0, Math.floor(ms))}\n\n`
}

/** Response headers of every stream: never cached, never transformed or buffered by proxies, never compressed. */
export const SSE_HEADERS: Readonly<Record<string, string>> = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache, no-transform',
  'x-accel-buffering': 'no',
  connection: 'keep-alive'
}

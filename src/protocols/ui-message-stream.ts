// The Vercel AI SDK UI message stream (`x-vercel-ai-ui-message-stream: v1`) for the stream routes: a
// StreamWire that writes the stream log's §8 events as the `ai` package's UI message chunks, one JSON
// `data:` frame each, so `useChat` / `DefaultChatTransport` / `readUIMessageStream` read a stream route
// unchanged. Stateful per connection: every response is a well-formed UI message stream by itself (a
// resumed one opens with `start` again and a new text part). Framework-free.
import { StreamErrorCode, eventId, type LoggedEvent, type StreamEvent, type StreamWire } from '../streams/events.js'

export const UI_MESSAGE_STREAM = 'ui-message-stream'
/** The response header the AI SDK's servers send with this format. */
export const UI_MESSAGE_STREAM_HEADERS: Readonly<Record<string, string>> = { 'x-vercel-ai-ui-message-stream': 'v1' }

/** Fields `DefaultChatTransport` adds to the request body next to its `body` option; not method input. */
export const CHAT_ENVELOPE_FIELDS = ['id', 'messages', 'trigger', 'messageId'] as const

/** The chunks this wire writes: a subset of the `ai` package's UIMessageChunk (test/protocols checks it). */
export type UiMessageChunk =
  | { type: 'start', messageId: string, messageMetadata?: Record<string, unknown> }
  | { type: 'start-step' }
  | { type: 'text-start', id: string }
  | { type: 'text-delta', id: string, delta: string }
  | { type: 'text-end', id: string }
  | { type: `data-${string}`, id?: string, data: unknown, transient?: boolean }
  | { type: 'error', errorText: string }
  | { type: 'finish-step' }
  | { type: 'finish', finishReason: 'stop' | 'error', messageMetadata?: Record<string, unknown> }

/** The id of the one text part of a message (the model's text: the tokens, concatenated). */
export const TEXT_PART_ID = 'text'

/**
 * SSE frames of `chunks`, `data: <json>` each (then `data: [DONE]` when `done`). Only the last frame carries
 * `id`, so a connection cut inside a group resumes before the whole group, never in its middle.
 */
export function encodeChunks (chunks: readonly UiMessageChunk[], id: string, done = false): string {
  const data = chunks.map(chunk => JSON.stringify(chunk))
  if (done) data.push('[DONE]')
  return data.map((line, i) => `${i === data.length - 1 ? `id: ${id}\n` : ''}data: ${line}\n\n`).join('')
}

/** `<CODE>: message`, the errorText of an `error` chunk. */
export const errorText = (code: string, message: string) => `${code}: ${message}`

/**
 * The wire of one connection. connected → `start` (messageId = the stream id) + `start-step`; token →
 * `text-start` (once) + `text-delta`; progress → transient `data-progress`; partial / post → `data-partial` /
 * `data-post`; result → `text-end` + `data-result`; usage → `data-usage`; complete → `finish-step` + `finish`
 * + `[DONE]`; error → `error` ("<CODE>: message") + `finish-step` + `finish` (finishReason error) + `[DONE]`.
 */
export function uiMessageStreamWire (): StreamWire {
  let started = false
  let textOpen = false

  const open = (streamId: string, event: StreamEvent): UiMessageChunk[] => {
    if (started) return []
    started = true
    const messageMetadata = event.event === 'connected'
      ? { streamId, agent: event.data.agent, method: event.data.method }
      : { streamId }
    return [{ type: 'start', messageId: streamId, messageMetadata }, { type: 'start-step' }]
  }
  const closeText = (): UiMessageChunk[] => {
    if (!textOpen) return []
    textOpen = false
    return [{ type: 'text-end', id: TEXT_PART_ID }]
  }

  const chunksOf = (event: LoggedEvent): UiMessageChunk[] => {
    switch (event.event) {
      case 'connected':
        return []
      case 'progress':
        return [{ type: 'data-progress', data: event.data, transient: true }]
      case 'token': {
        const delta: UiMessageChunk = { type: 'text-delta', id: TEXT_PART_ID, delta: event.data.chunk }
        if (textOpen) return [delta]
        textOpen = true
        return [{ type: 'text-start', id: TEXT_PART_ID }, delta]
      }
      case 'partial':
        return [{ type: 'data-partial', id: `partial-${event.seq}`, data: event.data.data }]
      case 'post':
        return [{ type: 'data-post', id: `post-${event.data.index}`, data: event.data }]
      case 'result':
        return [...closeText(), { type: 'data-result', id: 'result', data: event.data.data }]
      case 'usage':
        return [{ type: 'data-usage', id: 'usage', data: event.data }]
      case 'complete':
        return [
          ...closeText(),
          { type: 'finish-step' },
          { type: 'finish', finishReason: 'stop', messageMetadata: { ...event.data } }
        ]
      case 'error':
        return [
          ...closeText(),
          { type: 'error', errorText: errorText(event.data.code, event.data.message) },
          { type: 'finish-step' },
          { type: 'finish', finishReason: 'error' }
        ]
    }
  }

  return {
    headers: UI_MESSAGE_STREAM_HEADERS,
    event (streamId, event) {
      const chunks = [...open(streamId, event), ...chunksOf(event)]
      const last = event.event === 'complete' || event.event === 'error'
      return encodeChunks(chunks, eventId(streamId, event.seq), last)
    },
    /**
     * SHUTTING_DOWN and STREAM_GAP end this connection, not the stream: an `error` chunk (so useChat shows
     * it and the app can resume) with no `finish` and no `[DONE]`: the message is not complete.
     */
    notice (id, event) {
      if (event.event !== 'error') return ''
      const hint = event.data.code === StreamErrorCode.SHUTTING_DOWN ? ` (resume after ${id})` : ''
      return encodeChunks([{ type: 'error', errorText: errorText(event.data.code, event.data.message + hint) }], id)
    }
  }
}

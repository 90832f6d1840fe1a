// How a stream route picks its format: `?format=ui-message-stream` or `x-stream-format: ui-message-stream`
// (the query parameter wins); native §8 events otherwise. Also the hook that drops the AI SDK chat envelope
// (id, messages, trigger, messageId) from a ui-message-stream POST body before validation, so
// `DefaultChatTransport` pointed at a stream route sends exactly what it sends to any chat endpoint.
import type { FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { isRecord, stringFieldOf } from '../agents/unknown-values.js'
import { nativeWire, type StreamWire } from '../streams/events.js'
import { CHAT_ENVELOPE_FIELDS, UI_MESSAGE_STREAM, uiMessageStreamWire } from './ui-message-stream.js'

export const STREAM_FORMAT_HEADER = 'x-stream-format'

const formats = (description: string) =>
  Type.Optional(Type.Union([Type.Literal('native'), Type.Literal(UI_MESSAGE_STREAM)], { description }))

/** The `format` query parameter of the stream routes. */
export const FormatQuery = formats(
  'native (default): the §8 events. ui-message-stream: the Vercel AI SDK UI message stream ' +
  '(x-vercel-ai-ui-message-stream: v1), as useChat / DefaultChatTransport read it. Wins over x-stream-format'
)

/** The `x-stream-format` request header (same values as `format`). */
export const FormatHeaders = Type.Object({
  [STREAM_FORMAT_HEADER]: formats('Same as the `format` query parameter, for clients that cannot change the URL')
})

/** True when the request asks for the AI SDK UI message stream. */
export function wantsUiMessageStream (request: FastifyRequest): boolean {
  const query = stringFieldOf(request.query, 'format')
  if (query) return query === UI_MESSAGE_STREAM
  return request.headers[STREAM_FORMAT_HEADER] === UI_MESSAGE_STREAM
}

/** A fresh wire per connection (the UI message stream keeps state); the native one is stateless. */
export function wireFor (request: FastifyRequest): StreamWire {
  return wantsUiMessageStream(request) ? uiMessageStreamWire() : nativeWire
}

/** preValidation of a POST stream route: a ui-message-stream body loses the chat envelope fields. */
export async function stripChatEnvelope (request: FastifyRequest): Promise<void> {
  const body: unknown = request.body
  if (!isRecord(body) || !wantsUiMessageStream(request)) return
  for (const field of CHAT_ENVELOPE_FIELDS) delete body[field]
}

// TypeBox schemas of the streaming HTTP surface: the SSE events (documented as the text/event-stream
// 200 response of every stream route) and the JSON bodies of tickets, cancel, stats and cleanup.
import { Type, type Static, type TSchema } from 'typebox'
import { ref } from './common.js'

const Usage = Type.Object({
  inputTokens: Type.Integer(),
  outputTokens: Type.Integer(),
  costUsd: Type.Number(),
  model: Type.Optional(Type.String()),
  estimated: Type.Optional(Type.Boolean({ description: 'Counted from the text when the provider sent no usage' }))
})

const frameId = (name: string) => `StreamEvent${name[0].toUpperCase()}${name.slice(1)}`
/** One frame as a named component `StreamEvent<Name>`: `event` is the discriminator, `data` its payload. */
const frame = <N extends string, D extends TSchema>(name: N, data: D, description: string) =>
  Type.Object(
    {
      id: Type.String({
        description: '`<streamId>-<seq>`, seq strictly increasing within the stream',
        examples: ['st_5f0c1e9a2b7d4c3e8f6a1b2c-3']
      }),
      event: Type.Literal(name),
      data
    },
    { $id: frameId(name), description }
  )

/** The wire names (`failure` is the internal `error`: see wireName in events.ts). */
export const streamEventFrames = [
  frame(
    'connected',
    Type.Object({
      streamId: Type.String(),
      agent: Type.String(),
      method: Type.String(),
      resumed: Type.Optional(Type.Boolean())
    }),
    'First event of a stream'
  ),
  frame(
    'progress',
    Type.Object({ progress: Type.Integer({ minimum: 0, maximum: 100 }), message: Type.String() }),
    'Coarse progress, 0–100'
  ),
  frame(
    'token',
    Type.Object({ chunk: Type.String(), index: Type.Integer({ minimum: 0 }) }),
    "A piece of the model's text; the chunks, concatenated, are the whole text"
  ),
  frame(
    'partial',
    Type.Object({ data: Type.Unknown() }),
    'recommendations: one finished recommendation, parsed while the rest is still generated'
  ),
  frame(
    'post',
    Type.Object({ platform: Type.String(), content: Type.String(), index: Type.Integer() }),
    'social: one finished post'
  ),
  frame(
    'result',
    Type.Object({ data: Type.Unknown() }),
    "The validated output (same shape as the invoke endpoint's `data`)"
  ),
  frame('usage', Usage, 'Tokens and cost of the generation'),
  frame(
    'failure',
    Type.Object({
      code: Type.String({
        description:
          'AMK_… (generation failed), CANCELLED, GENERATION_INTERRUPTED, ' +
          'or SHUTTING_DOWN (connection only: reconnect with Last-Event-ID)'
      }),
      message: Type.String(),
      recoverable: Type.Boolean({ description: 'Retrying (or, for SHUTTING_DOWN, reconnecting) may succeed' }),
      lastEventId: Type.Optional(Type.String())
    }),
    'A server-side failure: terminal (except SHUTTING_DOWN, which only ends this connection). ' +
    'Named `failure`, not `error`, so EventSource.onerror means a lost connection only'
  ),
  frame('complete', Type.Object({ durationMs: Type.Number(), usage: Usage }), 'Last event of a successful stream')
]

const names = streamEventFrames.map(f => f.properties.event.const)
/**
 * The union as OpenAPI 3.1 `oneOf` + `discriminator` over the named frames, so generators yield a typed event
 * (narrowed by `event`). Documentation only: stream responses are written by hand, never serialised from it.
 */
export const StreamEventSchema = Type.Unsafe<Static<(typeof streamEventFrames)[number]>>({
  $id: 'StreamEvent',
  description:
    'One Server-Sent Event (`id:`, `event:`, `data:` JSON). Comment lines (`: heartbeat`) keep idle connections open.',
  oneOf: streamEventFrames.map(frame => ref(frame)),
  discriminator: {
    propertyName: 'event',
    mapping: Object.fromEntries(names.map(name => [name, `#/components/schemas/${frameId(name)}`]))
  }
})
export type StreamEventFrame = Static<typeof StreamEventSchema>

const chunk = <P extends Record<string, TSchema>>(type: string, props: P, description: string) =>
  Type.Object({ type: Type.Literal(type), ...props }, { description })
/**
 * One frame of the Vercel AI SDK UI message stream (`format=ui-message-stream`): `data: <chunk JSON>`, ids
 * `<streamId>-<seq>` on the last frame of each event's group, `data: [DONE]` after `finish`. The chunk types
 * are the `ai` package's (6.x) UIMessageChunk. Documentation only, like StreamEvent.
 */
export const UiMessageChunkSchema = Type.Union([
  chunk('start', {
    messageId: Type.String({ description: 'The stream id (st_…)' }),
    messageMetadata: Type.Optional(Type.Object({
      streamId: Type.String(),
      agent: Type.Optional(Type.String()),
      method: Type.Optional(Type.String())
    }))
  }, 'First chunk of every response (a resumed one too)'),
  chunk('start-step', {}, 'After start'),
  chunk('text-start', { id: Type.Literal('text') }, 'Before the first token of this response'),
  chunk('text-delta', { id: Type.Literal('text'), delta: Type.String() }, 'One token event'),
  chunk('text-end', { id: Type.Literal('text') }, 'Before the result (or the error)'),
  chunk('data-progress', {
    data: Type.Object({ progress: Type.Integer(), message: Type.String() }),
    transient: Type.Literal(true)
  }, 'Progress, 0–100: transient (useChat onData only, not kept in the message)'),
  chunk('data-partial', { id: Type.String(), data: Type.Unknown() }, 'recommendations: one finished recommendation'),
  chunk('data-post', {
    id: Type.String({ description: 'post-<index>' }),
    data: Type.Object({ platform: Type.String(), content: Type.String(), index: Type.Integer() })
  }, 'social: one finished post'),
  chunk('data-result', { id: Type.Literal('result'), data: Type.Unknown() }, 'The validated output'),
  chunk('data-usage', { id: Type.Literal('usage'), data: Usage }, 'Tokens and cost'),
  chunk('error', {
    errorText: Type.String({ description: '`<CODE>: message`, CODE as in the native failure event' })
  }, 'A failure: then finish (finishReason error). SHUTTING_DOWN / STREAM_GAP end the response with no finish'),
  chunk('finish-step', {}, 'Before finish'),
  chunk('finish', {
    finishReason: Type.Union([Type.Literal('stop'), Type.Literal('error')]),
    messageMetadata: Type.Optional(Type.Object({ durationMs: Type.Number(), usage: Usage }))
  }, 'Last chunk (then `data: [DONE]`)')
], { $id: 'UiMessageChunk' })

/** The 200 response of the four stream routes and the resume route: either format. */
export const streamFormatsResponse = {
  description:
    'Server-Sent Events (`text/event-stream`): `retry:` hint, then events with ids `<streamId>-<seq>`, heartbeat ' +
    'comments. With format=ui-message-stream: AI SDK UI message chunks (`data:` only, header ' +
    'x-vercel-ai-ui-message-stream: v1), ending with `data: [DONE]`',
  headers: {
    'x-vercel-ai-ui-message-stream': {
      type: 'string',
      enum: ['v1'],
      description: '`v1` when the format is ui-message-stream'
    }
  },
  content: {
    'text/event-stream': {
      schema: { oneOf: [ref(StreamEventSchema), ref(UiMessageChunkSchema)] }
    }
  }
}

export const TicketSchema = Type.Object({
  ticket: Type.String({ description: 'One-time ticket for `?ticket=` on GET stream routes (EventSource)' }),
  expiresAt: Type.String({ format: 'date-time' }),
  expiresInSeconds: Type.Integer()
}, { $id: 'StreamTicket' })

export const CancelResultSchema = Type.Object({
  success: Type.Boolean(),
  streamId: Type.String(),
  status: Type.Union([Type.Literal('cancelled'), Type.Literal('already-finished'), Type.Literal('cancel-requested')], {
    description: 'cancel-requested: the stream runs on another replica, which was told to abort it'
  })
}, { $id: 'StreamCancelResult' })

export const StreamStatsSchema = Type.Object({
  agent: Type.String(),
  instanceId: Type.String({ description: 'Figures are per instance' }),
  eventLog: Type.Union([Type.Literal('memory'), Type.Literal('redis')]),
  openConnections: Type.Integer(),
  active: Type.Integer(),
  started: Type.Integer(),
  completed: Type.Integer(),
  cancelled: Type.Integer(),
  failed: Type.Integer(),
  interrupted: Type.Integer(),
  averageDurationMs: Type.Number(),
  averageTimeToFirstTokenMs: Type.Union([Type.Number(), Type.Null()]),
  tokens: Type.Integer()
}, { $id: 'StreamStats' })

export const CleanupBodySchema = Type.Object(
  {
    maxIdleSeconds: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 86_400,
        default: 300,
        description: 'Cancel generations (onDisconnect: continue) nobody has read for this long (at most a day)'
      })
    )
  },
  { additionalProperties: false }
)

export const CleanupResultSchema = Type.Object({
  success: Type.Boolean(),
  cancelled: Type.Integer({ description: 'Orphaned generations cancelled' }),
  expiredLogs: Type.Integer({ description: 'Expired in-memory stream logs dropped' }),
  active: Type.Integer({ description: 'Generations still running on this instance' })
}, { $id: 'StreamCleanupResult' })

/** Components of the stream routes (registered by src/schemas/index.ts). */
export const streamSchemas = [
  ...streamEventFrames,
  StreamEventSchema,
  UiMessageChunkSchema,
  TicketSchema,
  CancelResultSchema,
  StreamStatsSchema,
  CleanupResultSchema
]

// TypeBox schemas of the AG-UI routes: the RunAgentInput body (as @ag-ui/core defines it: threadId, runId
// and messages required, open to fields a newer protocol version adds) and the AG-UI events of the
// text/event-stream response (documentation: frames are written by hand, never serialised from it).
import { Type, type Static } from 'typebox'
import { EventType } from '@ag-ui/core'
import { ref } from './common.js'

const Id = (description: string) => Type.String({ minLength: 1, maxLength: 200, description })

const MessageSchema = Type.Object(
  {
    id: Type.String({ maxLength: 200 }),
    role: Type.String({ description: 'user, assistant, system, developer, tool, activity or reasoning' }),
    content: Type.Optional(Type.Unknown({ description: 'A string, or content parts ({ type: "text", text } …)' }))
  },
  { additionalProperties: true }
)

export const AgUiRunAgentInputSchema = Type.Object(
  {
    threadId: Id('The conversation thread (echoed in RUN_STARTED / RUN_FINISHED)'),
    runId: Id(
      'This run (echoed back). On a workflow it is also the Idempotency-Key (per caller): ' +
      're-posting the same RunAgentInput joins the same run'
    ),
    protocolVersion: Type.Optional(Type.String({ maxLength: 50 })),
    parentRunId: Type.Optional(Type.String({ maxLength: 200 })),
    state: Type.Optional(Type.Unknown({ description: 'Not used: the run state comes back as STATE_SNAPSHOT' })),
    messages: Type.Array(MessageSchema, {
      maxItems: 200,
      description: 'When forwardedProps.input is absent, the last user message\'s content is the input (a JSON object)'
    }),
    tools: Type.Optional(Type.Array(Type.Unknown(), { maxItems: 100, description: 'Not used (no client tools)' })),
    context: Type.Optional(Type.Array(Type.Unknown(), { maxItems: 100, description: 'Not used' })),
    forwardedProps: Type.Optional(
      Type.Object(
        {
          input: Type.Optional(
            Type.Record(Type.String(), Type.Unknown(), {
              description: 'The method (or workflow) input, checked against its schema before the stream opens'
            })
          ),
          onDisconnect: Type.Optional(
            Type.Union([Type.Literal('cancel'), Type.Literal('continue')], {
              default: 'cancel',
              description: 'continue: the run goes on when the client goes away, so a resume (Last-Event-ID) finds it'
            })
          )
        },
        { additionalProperties: true }
      )
    ),
    resume: Type.Optional(Type.Array(Type.Unknown(), { maxItems: 100, description: 'Not used (no interrupts)' }))
  },
  {
    $id: 'AgUiRunAgentInput',
    additionalProperties: true,
    description: 'AG-UI RunAgentInput (@ag-ui/core 1.0); fields a newer protocol version adds are accepted'
  }
)
export type AgUiRunAgentInput = Static<typeof AgUiRunAgentInputSchema>

/** The event types these routes write. */
const WRITTEN = [
  EventType.RUN_STARTED,
  EventType.TEXT_MESSAGE_START,
  EventType.TEXT_MESSAGE_CONTENT,
  EventType.TEXT_MESSAGE_END,
  EventType.STEP_STARTED,
  EventType.STEP_FINISHED,
  EventType.STATE_SNAPSHOT,
  EventType.STATE_DELTA,
  EventType.CUSTOM,
  EventType.RUN_FINISHED,
  EventType.RUN_ERROR
]

export const AgUiEventSchema = Type.Object(
  {
    type: Type.Union(WRITTEN.map(type => Type.Literal(type))),
    threadId: Type.Optional(Type.String()),
    runId: Type.Optional(Type.String()),
    messageId: Type.Optional(Type.String()),
    delta: Type.Optional(Type.Unknown({ description: 'TEXT_MESSAGE_CONTENT: text; STATE_DELTA: JSON Patch' })),
    stepName: Type.Optional(Type.String()),
    snapshot: Type.Optional(Type.Unknown()),
    result: Type.Optional(Type.Unknown()),
    code: Type.Optional(Type.String({ description: 'RUN_ERROR: this API\'s error code (AMK_…, CANCELLED…)' })),
    message: Type.Optional(Type.String()),
    name: Type.Optional(Type.String({ description: 'CUSTOM: amk.progress, amk.partial, amk.post, amk.usage…' })),
    value: Type.Optional(Type.Unknown())
  },
  {
    $id: 'AgUiEvent',
    additionalProperties: true,
    description:
      'One AG-UI event: a `data:` line of JSON (no `event:` name, as AG-UI clients read it), with ' +
      '`id: <streamId>-<seq>` (workflows: `<coordinator runId>-<seq>`) on the last frame of each logged event'
  }
)

/** The 200 response of the AG-UI routes. */
export const agUiSseResponse = {
  description:
    'AG-UI events as Server-Sent Events (`text/event-stream`): RUN_STARTED first, RUN_FINISHED or RUN_ERROR last',
  content: { 'text/event-stream': { schema: ref(AgUiEventSchema) } }
}

/** Components of the AG-UI routes (registered by src/schemas/index.ts). */
export const agUiSchemas = [AgUiRunAgentInputSchema, AgUiEventSchema]

// AG-UI (the Agent–User Interaction protocol) for streamed agent methods: a StreamWire that writes the
// stream log's §8 events as AG-UI events (JSON `data:` frames, as @ag-ui/client's HttpAgent reads them),
// the frame encoder shared with workflows, and where a method's input comes from in a RunAgentInput.
// Each connection is a valid AG-UI run by itself: it opens with RUN_STARTED (a resumed one too) and
// re-opens the text message before more content. Framework-free.
import { EventType, type AGUIEvent, type TokenUsage } from '@ag-ui/core'
import { isRecord } from '../agents/unknown-values.js'
import { ValidationError, withDetails } from '../errors.js'
import {
  eventId,
  StreamErrorCode,
  type LoggedEvent,
  type StreamEvent,
  type StreamUsage,
  type StreamWire
} from '../streams/events.js'

/** The AG-UI identity of one run, as the client sent it in its RunAgentInput. */
export interface AgUiRun { threadId: string, runId: string }

/** Names of the CUSTOM events carrying our events that AG-UI has no type for. */
export const CUSTOM_PREFIX = 'amk.'

/**
 * Frames for `events`: one `data:` line of JSON each. Only the last frame carries `id` (the position in the
 * log), so a connection cut inside a group resumes before the whole group, never in its middle.
 */
export function encodeAgUi (events: readonly AGUIEvent[], id?: string): string {
  let text = ''
  events.forEach((event, i) => {
    text += `${id && i === events.length - 1 ? `id: ${id}\n` : ''}data: ${JSON.stringify(event)}\n\n`
  })
  return text
}

/** Our usage as AG-UI's TokenUsage. */
export function tokenUsage (usage: StreamUsage): TokenUsage {
  return {
    ...(usage.model ? { model: usage.model } : {}),
    inputTokens: usage.inputTokens,
    outputTokens: usage.outputTokens,
    totalTokens: usage.inputTokens + usage.outputTokens
  }
}

const custom = (name: string, value: unknown): AGUIEvent =>
  ({ type: EventType.CUSTOM, name: CUSTOM_PREFIX + name, value })

/**
 * The wire of one connection of a streamed agent method. connected → RUN_STARTED; token → TEXT_MESSAGE_START
 * (once per connection) + TEXT_MESSAGE_CONTENT; result → TEXT_MESSAGE_END + STATE_SNAPSHOT; complete →
 * RUN_FINISHED; error → RUN_ERROR with our code; progress, partial, post, usage → CUSTOM `amk.<event>`.
 */
export function agUiWire (run: AgUiRun, target: { agent: string, method: string }): StreamWire {
  let started = false
  let messageOpen = false
  let result: unknown
  const messageIdOf = (streamId: string) => `${streamId}-text`

  /** RUN_STARTED before the first frame of this connection, whatever the event. */
  const begin = (streamId: string, out: AGUIEvent[]) => {
    if (started) return
    started = true
    out.push({ type: EventType.RUN_STARTED, ...run, metadata: { streamId, ...target } })
  }
  const endMessage = (streamId: string, out: AGUIEvent[]) => {
    if (!messageOpen) return
    messageOpen = false
    out.push({ type: EventType.TEXT_MESSAGE_END, messageId: messageIdOf(streamId) })
  }

  function translate (streamId: string, event: StreamEvent, out: AGUIEvent[]): void {
    begin(streamId, out)
    switch (event.event) {
      case 'connected':
        return
      case 'token':
        if (!event.data.chunk) return
        if (!messageOpen) {
          messageOpen = true
          out.push({ type: EventType.TEXT_MESSAGE_START, messageId: messageIdOf(streamId), role: 'assistant' })
        }
        out.push({ type: EventType.TEXT_MESSAGE_CONTENT, messageId: messageIdOf(streamId), delta: event.data.chunk })
        return
      case 'result':
        endMessage(streamId, out)
        result = event.data.data
        out.push({ type: EventType.STATE_SNAPSHOT, snapshot: event.data.data })
        return
      case 'complete':
        endMessage(streamId, out)
        out.push({
          type: EventType.RUN_FINISHED,
          ...run,
          ...(result !== undefined ? { result } : {}),
          outcome: { type: 'success' },
          usage: [tokenUsage(event.data.usage)]
        })
        return
      case 'error':
        out.push({ type: EventType.RUN_ERROR, message: event.data.message, code: event.data.code })
        return
      default:
        out.push(custom(event.event, event.data))
    }
  }

  return {
    headers: {},
    event (streamId: string, event: LoggedEvent): string {
      const out: AGUIEvent[] = []
      translate(streamId, event, out)
      return encodeAgUi(out, eventId(streamId, event.seq))
    },
    notice (id: string, event: StreamEvent): string {
      const streamId = id.slice(0, Math.max(0, id.lastIndexOf('-')))
      const out: AGUIEvent[] = []
      begin(streamId, out)
      // SHUTTING_DOWN: this connection ends, the run goes on (resume with Last-Event-ID); a gap ends it here.
      if (event.event === 'error' && event.data.code !== StreamErrorCode.SHUTTING_DOWN) {
        out.push({ type: EventType.RUN_ERROR, message: event.data.message, code: event.data.code })
      } else out.push(custom(event.event === 'error' ? event.data.code : event.event, event.data))
      return encodeAgUi(out, id)
    }
  }
}

/** The text of a message's content: a string, or the text parts of a multimodal content array. */
function textOf (content: unknown): string | undefined {
  if (typeof content === 'string') return content
  if (!Array.isArray(content)) return undefined
  const parts = content.filter(isRecord).filter(part => part.type === 'text' && typeof part.text === 'string')
  return parts.length > 0 ? parts.map(part => String(part.text)).join('') : undefined
}

/**
 * The method (or workflow) input of a RunAgentInput: `forwardedProps.input` when it is an object, else the last
 * user message's text parsed as a JSON object; otherwise a 400 (before any stream opens).
 */
export function inputOf (body: { forwardedProps?: unknown, messages?: unknown }): Record<string, unknown> {
  const forwarded = isRecord(body.forwardedProps) ? body.forwardedProps.input : undefined
  if (isRecord(forwarded)) return forwarded
  const messages = Array.isArray(body.messages) ? body.messages.filter(isRecord) : []
  const text = textOf(messages.findLast(message => message.role === 'user')?.content)
  let parsed: unknown
  try {
    parsed = text === undefined ? undefined : JSON.parse(text)
  } catch {}
  if (isRecord(parsed)) return parsed
  throw withDetails(
    new ValidationError(
      'no input: send it as forwardedProps.input, or as the last user message\'s content (a JSON object)'
    ),
    [{ field: 'forwardedProps.input', message: 'must be an object (or the last user message a JSON object)' }]
  )
}

/** forwardedProps.onDisconnect: 'continue' leaves the run going when the client goes away (to resume it). */
export function onDisconnectOf (body: { forwardedProps?: unknown }): 'cancel' | 'continue' {
  const forwarded = isRecord(body.forwardedProps) ? body.forwardedProps.onDisconnect : undefined
  return forwarded === 'continue' ? 'continue' : 'cancel'
}

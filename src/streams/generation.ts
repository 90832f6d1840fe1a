// Runs one streamed agent call and turns it into the §8 events, appended to the event log (connections
// read them from there at their own pace): connected, progress, token, partial | post, result, usage,
// complete — or one terminal error. Framework-free: the agent service's invoke is passed in.
import type { AgentName, InvokeRequest, InvokeResult, StreamItems } from '../agents/types.js'
import type { Caller } from '../auth/roles.js'
import { toPublicError } from '../errors.js'
import { ArrayItemScanner } from './array-scanner.js'
import { interruptedEvent, StreamErrorCode, type LoggedEvent, type StreamEvent, type StreamUsage } from './events.js'
import type { EventLog } from './event-log.js'
import type { Session, SessionStatus } from './sessions.js'

/** What a route streams besides tokens: each element of one output array (the method's `streamItems`). */
export type ItemEvents = StreamItems<Record<string, unknown[]>>

export interface GenerationRequest {
  agent: AgentName
  method: string
  input: Record<string, unknown>
  caller: Caller
  items?: ItemEvents
  /** Skip the response cache (Cache-Control: no-cache or no-store, as on invoke routes). */
  noCache?: boolean
}

/** Why a generation was aborted (the AbortSignal's reason). */
export type AbortReason = 'cancel' | 'disconnect' | 'shutdown' | 'idle'

export interface GenerationOutcome {
  status: Exclude<SessionStatus, 'running'>
  timeToFirstTokenMs?: number
  tokens: number
}

export interface GenerationDeps {
  log: EventLog
  invoke(request: InvokeRequest): Promise<InvokeResult>
  /** Called per token, with the stream's agent (stats). */
  onToken?(agent: string): void
  /** Called once the generation has ended and its events are appended, before its promise resolves. */
  ended?(session: Session, outcome: GenerationOutcome): void
}

const SYNTHETIC_CHUNK = 48

/** Progress while tokens arrive: 10 → 90 %, approaching 90 as the text grows (length is unknown up front). */
const progressFor = (chars: number) => Math.min(90, 10 + Math.floor(80 * (1 - Math.exp(-chars / 4000))))

/**
 * The terminal event of a failed generation. `recoverable` means "a resume will continue", which is never
 * true once the log has ended (a spent budget, bad output, a provider failure): a resume gets 204.
 */
function errorEvent (error: unknown): StreamEvent {
  // The one masking rule: only catalogue errors keep their message (src/errors.ts).
  const { code, message } = toPublicError(error)
  return { event: 'error', data: { code, message, recoverable: false } }
}

/** A stream item's field as text (an object the model wrote may lack it). */
function field (item: unknown, ...names: string[]): string {
  if (typeof item !== 'object' || item === null) return ''
  for (const name of names) {
    const value: unknown = Reflect.get(item, name)
    if (value !== undefined && value !== null) return String(value)
  }
  return ''
}

const ABORT_REASONS: readonly AbortReason[] = ['cancel', 'disconnect', 'shutdown', 'idle']
const abortReasonOf = (reason: unknown): AbortReason => ABORT_REASONS.find(r => r === reason) ?? 'cancel'

function abortEvent (reason: AbortReason): StreamEvent {
  if (reason === 'shutdown') return interruptedEvent('shut down')
  const why =
    reason === 'cancel'
      ? 'cancelled'
      : reason === 'idle'
        ? 'cancelled by cleanup (no reader)'
        : 'cancelled: the client disconnected'
  return {
    event: 'error',
    data: { code: StreamErrorCode.CANCELLED, message: `The generation was ${why}`, recoverable: false }
  }
}

/** Resolves with the outcome once the events appended so far are stored and the end is reported. */
function reported (
  appended: Promise<void>,
  deps: GenerationDeps,
  session: Session,
  outcome: GenerationOutcome
): Promise<GenerationOutcome> {
  return appended.then(() => {
    deps.ended?.(session, outcome)
    return outcome
  })
}

/**
 * Runs the generation; resolves with its outcome once its events are appended. Not an async function: the
 * call lasts the stream's whole life, and an awaiting frame would stay parked all along (its register file,
 * two await closures and a reaction: about 300 bytes more per open stream than the one reaction here).
 */
export function runGeneration (
  session: Session,
  request: GenerationRequest,
  deps: GenerationDeps
): Promise<GenerationOutcome> {
  const { log } = deps
  let seq = 0
  let pending: Promise<void> = Promise.resolve()
  let lastAppended: Promise<void> | null = null
  const emit = (event: StreamEvent) => {
    // The memory log answers one shared resolved promise; the Redis log one per batch of writes.
    // One object shape for every event, built directly (a spread copies through V8's generic property path).
    const appended = log.append(session.streamId, { event: event.event, data: event.data, seq: ++seq } as LoggedEvent)
    if (appended !== lastAppended) {
      lastAppended = appended
      pending = appended.catch(() => {})
    }
  }

  const itemEvent = request.items?.event
  const scanner = request.items ? new ArrayItemScanner(request.items.property) : null
  let tokens = 0
  let chars = 0
  let items = 0
  let lastProgress = 10
  let timeToFirstTokenMs: number | undefined

  const onDelta = (chunk: string) => {
    if (!chunk || session.abort.signal.aborted) return
    if (timeToFirstTokenMs === undefined) {
      timeToFirstTokenMs = Date.now() - session.startedAt
      emit({ event: 'progress', data: { progress: 10, message: 'Generating' } })
    }
    emit({ event: 'token', data: { chunk, index: tokens++ } })
    deps.onToken?.(session.agent)
    chars += chunk.length
    for (const item of scanner?.push(chunk) ?? []) {
      if (itemEvent === 'partial') emit({ event: 'partial', data: { data: item } })
      else {
        emit({
          event: 'post',
          data: { platform: field(item, 'platform'), content: field(item, 'content', 'text'), index: items }
        })
      }
      items++
    }
    const progress = progressFor(chars)
    if (progress >= lastProgress + 10) {
      lastProgress = progress
      emit({ event: 'progress', data: { progress, message: 'Generating' } })
    }
  }

  emit({ event: 'connected', data: { streamId: session.streamId, agent: request.agent, method: request.method } })
  emit({ event: 'progress', data: { progress: 0, message: `Starting ${request.agent}.${request.method}` } })

  // The two continuations, made once each (not per event); each resolves once every appended event is stored
  // and the end is reported.
  const failed = (error: unknown): Promise<GenerationOutcome> => {
    const signal = session.abort.signal
    let outcome: GenerationOutcome
    if (signal.aborted) {
      const reason = abortReasonOf(signal.reason)
      emit(abortEvent(reason))
      outcome = { status: reason === 'shutdown' ? 'interrupted' : 'cancelled', timeToFirstTokenMs, tokens }
    } else {
      emit(errorEvent(error))
      outcome = { status: 'error', timeToFirstTokenMs, tokens }
    }
    return reported(pending, deps, session, outcome)
  }
  const completed = (result: InvokeResult): Promise<GenerationOutcome> => {
    try {
      if (session.abort.signal.aborted) throw session.abort.signal.reason
      if (tokens === 0) {
        // Served from the cache (or a provider that did not stream): the client still gets the text as tokens.
        const text = JSON.stringify(result.data)
        for (let i = 0; i < text.length; i += SYNTHETIC_CHUNK) onDelta(text.slice(i, i + SYNTHETIC_CHUNK))
      }
      const usage: StreamUsage = {
        inputTokens: result.usage.inputTokens,
        outputTokens: result.usage.outputTokens,
        costUsd: result.usage.costUsd,
        model: result.usage.model
      }
      if (result.usage.estimated) usage.estimated = true
      emit({ event: 'progress', data: { progress: 100, message: result.cached ? 'Completed (cached)' : 'Completed' } })
      emit({ event: 'result', data: { data: result.data } })
      emit({ event: 'usage', data: usage })
      emit({ event: 'complete', data: { durationMs: Date.now() - session.startedAt, usage } })
    } catch (error) {
      return failed(error)
    }
    return reported(pending, deps, session, { status: 'completed', timeToFirstTokenMs, tokens })
  }

  let invoked: Promise<InvokeResult>
  try {
    invoked = deps.invoke({
      agent: request.agent,
      method: request.method,
      input: request.input,
      caller: request.caller,
      signal: session.abort.signal,
      // Shutdown aborts the session itself ('shutdown': GENERATION_INTERRUPTED), as the stream's preClose does.
      controller: session.abort,
      onDelta,
      streamId: session.streamId,
      noCache: request.noCache
    })
  } catch (error) {
    invoked = Promise.reject(error)
  }
  return invoked.then(completed, failed)
}

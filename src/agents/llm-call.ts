// One provider call as the agent service makes it: budget hooks first, then a 'pending' usage-ledger row
// (the call is visible before it starts), then generate() or stream() (forwarding deltas), then the row
// settled and one LlmCallRecord whatever the outcome — success, error or cancelled (with usage estimated
// from the text produced so far). A call the provider rejected without output is recorded but not charged.
// The settlement (the budget release and the row, written together) is handed to the invocation's tally, which
// the invocation awaits before it ends: the round trips overlap the answer's checks and its cache write.
import { randomUUID } from 'node:crypto'
import type { Caller } from '../auth/roles.js'
import { estimateTokens } from '../llm/tokens.js'
import type { CallSignal, GenerateRequest, GenerateResult, LlmProvider, Usage } from '../llm/types.js'
import type { UsageLedger, UsageRow } from '../store/usage-ledger.js'
import type { AgentName, AgentServiceHooks, LlmCallRecord } from './types.js'
import { fieldOf, stringFieldOf } from './unknown-values.js'

/** Output tokens assumed when reserving a budget before the call. */
export const EXPECTED_OUTPUT_TOKENS = 2048

export interface CallScope {
  agent: AgentName
  method: string
  caller: Caller | null
  traceId: string
  parentTraceId?: string
  streamId?: string
  runId?: string
  signal?: CallSignal
  onDelta?: (delta: string) => void
}

export interface CallDeps {
  provider: LlmProvider
  price(model: string, usage: Pick<Usage, 'inputTokens' | 'outputTokens'>): number
  hooks: AgentServiceHooks[]
  ledger?: UsageLedger
  warn(details: object, message: string): void
}

export interface CallOutcome { result: GenerateResult, costUsd: number }

/** What an invocation keeps of its provider calls: their usage, and their settlements until written. */
export interface CallTally {
  add(usage: Usage & { costUsd: number }, models: string[], calls: number): void
  /** A call's settlement (budget release and usage row) in flight; the invocation awaits it before it ends. */
  settling(write: Promise<unknown>): void
}

/** A request that can let go of its prompt text once the provider has started answering a stream. */
export interface ReleasablePrompt extends GenerateRequest {
  releasePrompt?(): void
}

/** The provider refused the call (HTTP error or no connection) and produced nothing: nothing to charge. */
function rejectedWithoutOutput (failure: unknown, text: string): boolean {
  return text === '' && fieldOf(failure, 'code') === 'AMK_LLM_UNAVAILABLE'
}

function errorInfo (error: unknown) {
  return {
    code: stringFieldOf(error, 'code') ?? 'AMK_INTERNAL',
    message: stringFieldOf(error, 'message') ?? String(error)
  }
}

/** A hook's reservation, settled with the call's actual use (a method: its object is its state). */
interface Reservation { release?(actual: { tokens: number, costUsd: number }): Promise<void> }

const NOTHING_RESERVED: readonly Reservation[] = []

/** Settles every reservation with the call's actual use; a failed release is logged. */
async function release (
  deps: CallDeps,
  reservations: readonly Reservation[],
  actual: { tokens: number, costUsd: number }
): Promise<void> {
  for (const reservation of reservations) {
    await reservation.release?.(actual).catch(err => deps.warn({ err }, 'budget release failed'))
  }
}

/**
 * Runs the budget hooks; returns their reservations. Held for the whole call (an open stream's life): the
 * hooks' own objects, in an exact-size array, and a shared empty one when no hook reserved.
 */
async function reserve (
  deps: CallDeps,
  scope: CallScope,
  request: GenerateRequest,
  inputTokens: number
): Promise<readonly Reservation[]> {
  const estimate = { inputTokens, outputTokens: EXPECTED_OUTPUT_TOKENS }
  let reservations = NOTHING_RESERVED
  try {
    for (const hook of deps.hooks) {
      if (!hook.beforeLlmCall) continue
      const reservation = await hook.beforeLlmCall({
        agent: scope.agent,
        method: scope.method,
        model: request.model,
        caller: scope.caller,
        estimatedTokens: inputTokens + EXPECTED_OUTPUT_TOKENS,
        estimatedCostUsd: deps.price(request.model, estimate)
      })
      if (reservation?.release) reservations = reservations.concat(reservation)
    }
  } catch (error) {
    await release(deps, reservations, { tokens: 0, costUsd: 0 }) // earlier hooks reserved; a later one refused
    throw error
  }
  return reservations
}

type RowFields =
  Pick<UsageRow, 'model' | 'inputTokens' | 'outputTokens' | 'costUsd' | 'status' | 'durationMs' | 'estimated'>

/** A call's usage-ledger row (its reservation and its settlement share callId and startedAt). */
function usageRow (scope: CallScope, callId: string, startedAt: number, fields: RowFields): UsageRow {
  return {
    callId,
    startedAt,
    callerId: scope.caller?.id ?? 'anonymous',
    callerType: scope.caller?.kind ?? 'anonymous',
    role: scope.caller?.role ?? null,
    agent: scope.agent,
    method: scope.method,
    traceId: scope.traceId,
    streamId: scope.streamId,
    runId: scope.runId,
    ...fields
  }
}

/** A call once it is visible: its reservations and the identity its ledger rows share. */
interface OpenCall {
  reservations: readonly Reservation[]
  promptTokens: number
  startedAt: number
  callId: string
}

/** Reserves the call's budgets and records its 'pending' row: visible before it starts. */
async function openCall (deps: CallDeps, scope: CallScope, request: ReleasablePrompt): Promise<OpenCall> {
  const promptTokens = estimateTokens(request.system + request.prompt)
  const reservations = await reserve(deps, scope, request, promptTokens)
  const call: OpenCall = { reservations, promptTokens, startedAt: Date.now(), callId: randomUUID() }
  // A crash from here on leaves a pending row that the sweep settles.
  await deps.ledger
    ?.record(
      usageRow(scope, call.callId, call.startedAt, {
        model: request.model,
        inputTokens: promptTokens,
        outputTokens: 0,
        costUsd: deps.price(request.model, { inputTokens: promptTokens, outputTokens: 0 }),
        status: 'pending',
        durationMs: 0,
        estimated: true
      })
    )
    .catch(err => deps.warn({ err }, 'usage ledger reservation failed'))
  return call
}

/** What the provider produced, however the call ended (a failed or cancelled stream's text is estimated). */
interface Produced {
  result: GenerateResult | undefined
  failure: unknown
  /** The text so far of a call that produced no result. */
  partial: string
  durationMs: number
  firstTokenMs: number | undefined
}

/**
 * Settles the call: its usage to the tally, its budget release and ledger row handed to the tally to write,
 * one LlmCallRecord to the hooks; then its result, or its failure thrown.
 */
function settleCall (
  deps: CallDeps,
  scope: CallScope,
  request: ReleasablePrompt,
  tally: CallTally,
  call: OpenCall,
  produced: Produced
): CallOutcome {
  const { result, failure, durationMs } = produced
  const text = result ? result.text : produced.partial
  const status: LlmCallRecord['status'] =
    failure === undefined ? 'success' : request.signal?.aborted ? 'cancelled' : 'error'
  const rejected = status === 'error' && !result && rejectedWithoutOutput(failure, text)
  const usage: Usage =
    result?.usage ??
    (rejected
      ? { inputTokens: 0, outputTokens: 0, estimated: false }
      : { inputTokens: call.promptTokens, outputTokens: estimateTokens(text), estimated: true })
  const model = result?.model ?? stringFieldOf(fieldOf(failure, 'details'), 'model') ?? request.model
  const costUsd = rejected ? 0 : deps.price(model, usage)
  tally.add({ ...usage, costUsd }, [model], 1)
  tally.settling(Promise.all([
    release(deps, call.reservations, { tokens: usage.inputTokens + usage.outputTokens, costUsd }),
    deps.ledger
      ?.record(
        usageRow(scope, call.callId, call.startedAt, {
          model,
          inputTokens: usage.inputTokens,
          outputTokens: usage.outputTokens,
          costUsd,
          status,
          durationMs,
          estimated: usage.estimated ?? false
        })
      )
      .catch(err => deps.warn({ err }, 'usage ledger write failed'))
  ]))

  const record: LlmCallRecord = {
    traceId: scope.traceId,
    parentTraceId: scope.parentTraceId,
    agent: scope.agent,
    method: scope.method,
    model,
    caller: scope.caller,
    usage,
    costUsd,
    status,
    ...(failure !== undefined ? { error: errorInfo(failure) } : {}),
    startedAt: call.startedAt,
    durationMs,
    timeToFirstTokenMs: produced.firstTokenMs,
    prompt: { system: request.system, prompt: request.prompt },
    output: result ? (result.json ?? result.text) : undefined
  }
  for (const hook of deps.hooks) {
    try {
      hook.onLlmCall?.(record)
    } catch (err) {
      deps.warn({ err }, 'onLlmCall hook failed')
    }
  }
  if (failure !== undefined) throw failure
  return { result: result!, costUsd }
}

/**
 * One provider call. Its frame stays parked for a stream's whole life, so it holds only what the stream needs
 * (openCall and settleCall do the rest), a few registers instead of fifty.
 */
export async function callProvider (
  deps: CallDeps,
  scope: CallScope,
  request: ReleasablePrompt,
  stream: boolean,
  /** Gets the call's usage whatever the outcome (a failed or cancelled call's estimated from its text). */
  tally: CallTally
): Promise<CallOutcome> {
  const call = await openCall(deps, scope, request)
  const started = performance.now() // durations and time to first token are the provider's
  let firstTokenMs: number | undefined
  // A stream's deltas, joined once it ends: `text += delta` would hold a 32-byte string node per delta for the
  // stream's life (an array slot is 8 bytes).
  const deltas: string[] = []
  let result: GenerateResult | undefined
  let failure: unknown
  try {
    if (stream) {
      for await (const chunk of deps.provider.stream(request)) {
        if (chunk.type === 'delta') {
          if (firstTokenMs === undefined) {
            firstTokenMs = performance.now() - started
            request.releasePrompt?.() // the provider has sent it; the stream may last minutes
          }
          deltas.push(chunk.delta)
          scope.onDelta?.(chunk.delta)
        } else {
          result = { text: deltas.join(''), usage: chunk.usage, model: chunk.model }
        }
      }
      if (!result) throw new Error('The provider stream ended without usage')
    } else {
      result = await deps.provider.generate(request)
    }
  } catch (error) {
    failure = error
  }
  const durationMs = performance.now() - started
  const partial = result ? '' : deltas.join('') // a failed or cancelled stream's, for its estimate
  return settleCall(deps, scope, request, tally, call, { result, failure, partial, durationMs, firstTokenMs })
}

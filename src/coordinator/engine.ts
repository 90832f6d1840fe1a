// The workflow engine: runs a checked plan (plan.ts) step by step through an injected `invoke`, with
// per-step timeouts and a run-wide abort signal that reaches the provider call. It never throws for a
// step's failure: every step ends with a status (completed, failed, timed_out, cancelled, skipped),
// its timing and its usage, and the run's status, result and usage totals follow from them.
import { LazyAbortController, type CallSignal } from '../agents/call-abort.js'
import { isCatalogueError, toPublicError } from '../errors.js'
import { AGGREGATORS } from './aggregators.js'
import { lookup, problemOf, RefProblem, resolveTemplate, type ParsedRef } from './refs.js'
import type { Plan, PlannedStep } from './plan.js'
import type {
  EngineDeps,
  JsonObject,
  RunOptions,
  RunOutcome,
  StepError,
  StepRef,
  StepResult,
  StepUsage
} from './types.js'

const ZERO: StepUsage = { inputTokens: 0, outputTokens: 0, costUsd: 0 }

export function refOf (step: PlannedStep): StepRef {
  return {
    index: step.index,
    ...(step.id ? { id: step.id } : {}),
    role: step.role,
    agent: step.agent,
    method: step.method,
    path: `${step.agent}.${step.method}`
  }
}

/** The steps of a plan before anything ran (what a new run stores). */
export function initialSteps (plan: Plan): StepResult[] {
  return plan.steps.map(pending)
}

/**
 * Indices of the steps the engine starts the moment the run begins: the first `concurrency` tasks of a parallel
 * run, else step 0 (the first sequential step, the master).
 */
export function firstSteps (plan: Plan): number[] {
  if (plan.strategy === 'parallel') return plan.steps.slice(0, plan.concurrency).map(s => s.index)
  return plan.steps.length > 0 ? [0] : []
}

/**
 * What a new run stores: its steps, those that start at once (firstSteps) already `running`. Storing them with
 * the run row saves a write per run and means a step is stored as started before it starts.
 */
export function stepsAtStart (plan: Plan, startedAt: string): StepResult[] {
  const first = new Set(firstSteps(plan))
  return plan.steps.map(step =>
    first.has(step.index) ? { ...pending(step), status: 'running', startedAt } : pending(step))
}

/** Built as literals: a rest-and-spread copy of the step's ref cost a few µs a step (30 per 10-task run). */
function pending (step: PlannedStep): StepResult {
  const usage = { inputTokens: 0, outputTokens: 0, costUsd: 0 }
  const { index, id, role, agent, method } = step
  return id
    ? { index, id, role, agent, method, status: 'pending', usage, cached: false, durationMs: 0 }
    : { index, role, agent, method, status: 'pending', usage, cached: false, durationMs: 0 }
}

/**
 * A step error from anything thrown, by the one masking rule (toPublicError): only catalogue errors keep their
 * message.
 */
export function toStepError (error: unknown): StepError {
  const { code, message, details } = toPublicError(error)
  return { code, message, ...(details !== undefined ? { details } : {}) }
}

/** The step error of a catalogue error (AMK_…); null for anything else, which is unexpected. */
export function stepErrorOf (error: unknown): StepError | null {
  return isCatalogueError(error) ? toStepError(error) : null
}

function usageOf (value: unknown): StepUsage {
  const usage = (value as { usage?: Partial<StepUsage> } | null)?.usage
  if (!usage || typeof usage.inputTokens !== 'number') return { ...ZERO }
  return {
    inputTokens: usage.inputTokens,
    outputTokens: usage.outputTokens ?? 0,
    costUsd: usage.costUsd ?? 0,
    ...(usage.model ? { model: usage.model } : {}),
    ...(usage.estimated ? { estimated: true } : {})
  }
}

/** Waits for `call`; once `signal` aborts, waits at most `graceMs` more (so a cooperative abort reports its usage). */
function settle<T> (call: Promise<T>, signal: CallSignal, graceMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    let grace: NodeJS.Timeout | undefined
    const onAbort = () => { grace = setTimeout(() => reject(signal.reason), graceMs) }
    const done = () => { clearTimeout(grace); signal.removeEventListener('abort', onAbort) }
    if (signal.aborted) onAbort()
    else signal.addEventListener('abort', onAbort, { once: true })
    call.then(value => { done(); resolve(value) }, error => { done(); reject(error) })
  })
}

export async function executePlan (plan: Plan, deps: EngineDeps, options: RunOptions): Promise<RunOutcome> {
  const started = performance.now()
  const results = plan.steps.map(pending)
  const ids = new Map(plan.steps.flatMap((s): Array<[string, number]> => s.id ? [[s.id, s.index]] : []))
  const emit: NonNullable<RunOptions['onEvent']> = event => { try { options.onEvent?.(event) } catch {} }
  const cancelError = (): StepError =>
    stepErrorOf(options.signal.reason) ?? { code: 'AMK_CANCELLED', message: 'the run was cancelled' }

  const skip = (step: PlannedStep, error: StepError) => {
    results[step.index] = { ...results[step.index], status: 'skipped', error }
  }

  const view = (index: number, ref: ParsedRef, field: string) => {
    const target = results[index]
    if (target.status !== 'completed') {
      throw new RefProblem(
        field,
        `reference "${ref.text}": step ${index} (${target.agent}.${target.method}) ${target.status}`
      )
    }
    return { id: target.id, agent: target.agent, method: target.method, status: target.status, data: target.data }
  }

  const resolverFor = (step: PlannedStep) => (ref: ParsedRef, field: string): unknown => {
    if (ref.root === 'input') return lookup(plan.input, ref.segments)
    if (ref.root === 'previous') {
      return lookup(view(step.role === 'sub-agent' ? 0 : step.index - 1, ref, field), ref.segments)
    }
    const [name, ...rest] = ref.segments
    return lookup(view(/^\d+$/.test(name) ? Number(name) : ids.get(name)!, ref, field), rest)
  }

  async function runStep (step: PlannedStep): Promise<StepResult> {
    const ref = refOf(step)
    if (options.signal.aborted) { skip(step, cancelError()); return results[step.index] }
    const startedAt = new Date().toISOString()
    const t0 = performance.now()
    results[step.index] = { ...results[step.index], status: 'running', startedAt }
    emit({ event: 'step-started', data: { ...ref, startedAt } })
    const outcome = await attempt(step, ref)
    const result: StepResult = {
      ...results[step.index],
      ...outcome,
      finishedAt: new Date().toISOString(),
      durationMs: Math.round(performance.now() - t0)
    }
    results[step.index] = result
    emit({ event: result.status === 'completed' ? 'step-completed' : 'step-failed', data: result })
    return result
  }

  async function attempt (step: PlannedStep, ref: StepRef): Promise<Partial<StepResult>> {
    // Not copied: invoke changes no input (EngineDeps), and a context is added to a shallow copy.
    let input: JsonObject
    try {
      input = (step.resolved ?? resolveTemplate(step.template, resolverFor(step), `${step.field}.input`)) as JsonObject
    } catch (error) {
      const problem = problemOf(error)
      if (problem) {
        return {
          status: 'failed',
          error: { code: 'AMK_VALIDATION', message: `${problem.field} ${problem.message}`, details: [problem] }
        }
      }
      deps.onUnexpectedError?.(error, ref)
      return { status: 'failed', error: toStepError(error) }
    }
    const contextFrom =
      step.role === 'sub-agent'
        ? results[0]
        : step.role === 'step' && step.index > 0
          ? results[step.index - 1]
          : undefined
    let withContext = false
    if (
      contextFrom?.status === 'completed' &&
      typeof input === 'object' &&
      input !== null &&
      !Array.isArray(input) &&
      !Object.hasOwn(input, 'context')
    ) {
      input = { ...input, context: contextFrom.data }
      withContext = true
    }
    // An input resolved at plan time was validated there (the catalog is fixed); anything resolved now, or
    // given a context, is checked before the call.
    const problems = step.resolved && !withContext ? [] : deps.catalog.validate(step.agent, step.method, input) ?? []
    if (problems.length > 0) {
      const details = problems.map(p => ({
        field: [`${step.field}.input`, p.field].filter(Boolean).join('.'),
        message: p.message
      }))
      return {
        status: 'failed',
        error: { code: 'AMK_VALIDATION', message: details.map(d => `${d.field} ${d.message}`).join('; '), details }
      }
    }

    const timeoutMs = plan.timeoutMs ?? deps.stepTimeoutMs
    // A light controller (its own signal): a Node AbortController is an EventTarget, about 3 µs and 0.7 KB a step.
    const controller = new LazyAbortController()
    let timedOut = false
    const onRunAbort = () => controller.abort(options.signal.reason)
    options.signal.addEventListener('abort', onRunAbort, { once: true })
    const timer = setTimeout(() => {
      timedOut = true
      controller.abort(new Error(`step timed out after ${timeoutMs} ms`))
    }, timeoutMs)
    let seq = 0
    const onDelta = options.streamTokens
      ? (chunk: string) => emit({ event: 'token', data: { index: step.index, path: ref.path, chunk, seq: seq++ } })
      : undefined
    try {
      const call = deps.invoke({
        index: step.index,
        agent: step.agent,
        method: step.method,
        input,
        signal: controller.signal,
        ...(onDelta ? { onDelta } : {})
      })
      const result = await settle(call, controller.signal, deps.abortGraceMs ?? 1000)
      if (controller.signal.aborted) throw Object.assign(new Error('aborted'), { usage: result.usage })
      return {
        status: 'completed',
        data: result.data,
        usage: usageOf(result),
        cached: result.cached,
        traceId: result.traceId
      }
    } catch (error) {
      const usage = usageOf(error)
      if (timedOut) {
        return {
          status: 'timed_out',
          usage,
          error: { code: 'AMK_LLM_TIMEOUT', message: `step timed out after ${timeoutMs} ms` }
        }
      }
      if (options.signal.aborted) return { status: 'cancelled', usage, error: cancelError() }
      const known = stepErrorOf(error)
      if (!known) deps.onUnexpectedError?.(error, ref)
      return { status: 'failed', usage, error: known ?? toStepError(error) }
    } finally {
      clearTimeout(timer)
      options.signal.removeEventListener('abort', onRunAbort)
    }
  }

  async function pool (steps: PlannedStep[]): Promise<void> {
    let next = 0
    const worker = async () => {
      while (next < steps.length) await runStep(steps[next++])
    }
    await Promise.all(Array.from({ length: Math.min(plan.concurrency, steps.length) }, worker))
  }

  if (plan.strategy === 'sequential') {
    let stoppedBy: StepResult | null = null
    for (const step of plan.steps) {
      if (stoppedBy) {
        skip(step, {
          code: 'AMK_SKIPPED',
          message: `not run: step ${stoppedBy.index} (${stoppedBy.agent}.${stoppedBy.method}) ${stoppedBy.status} ` +
            'and onError is "stop"'
        })
      } else if ((await runStep(step)).status !== 'completed' && plan.onError === 'stop' && !options.signal.aborted) {
        stoppedBy = results[step.index]
      }
    }
  } else if (plan.strategy === 'parallel') {
    await pool(plan.steps)
  } else {
    const [master, ...subAgents] = plan.steps
    const led = await runStep(master)
    if (led.status === 'completed') await pool(subAgents)
    else {
      for (const step of subAgents) {
        skip(
          step,
          led.status === 'cancelled'
            ? cancelError()
            : { code: 'AMK_SKIPPED', message: `not run: the master ${led.status}` }
        )
      }
    }
  }

  return outcome(plan, results, options.signal, cancelError, Math.round(performance.now() - started))
}

/**
 * The result of a sequential run (the last completed step's data, else null) or of a parallel one (each completed
 * step's data under its id, else its index): made of its steps, so the run store rebuilds it from them.
 */
export function resultOfSteps (strategy: 'sequential' | 'parallel', steps: StepResult[]): unknown {
  const done = steps.filter(s => s.status === 'completed')
  if (strategy === 'sequential') return done.length ? done[done.length - 1].data : null
  return Object.fromEntries(done.map(s => [s.id ?? String(s.index), s.data]))
}

function outcome (
  plan: Plan,
  steps: StepResult[],
  signal: CallSignal,
  cancelError: () => StepError,
  durationMs: number
): RunOutcome {
  const usage = { inputTokens: 0, outputTokens: 0, costUsd: 0 }
  for (const step of steps) {
    usage.inputTokens += step.usage.inputTokens
    usage.outputTokens += step.usage.outputTokens
    usage.costUsd += step.usage.costUsd
  }
  const status = steps.every(s => s.status === 'completed') ? 'completed' : signal.aborted ? 'cancelled' : 'failed'
  let result: unknown = null
  if (plan.strategy !== 'hierarchical') result = resultOfSteps(plan.strategy, steps)
  else if (steps[0].status === 'completed') result = AGGREGATORS[plan.aggregator].aggregate(steps[0], steps.slice(1))
  let error: StepError | undefined
  if (status === 'cancelled') error = cancelError()
  if (status === 'failed') {
    const failed = steps.filter(s => s.status !== 'completed' && s.status !== 'skipped')
    const first = failed[0] ?? steps.find(s => s.status !== 'completed')!
    error = {
      code: first.error?.code ?? 'AMK_INTERNAL',
      message: `${failed.length} of ${steps.length} steps did not complete; ` +
        `first: step ${first.index} (${first.agent}.${first.method}) ${first.status}: ${first.error?.message ?? ''}`,
      details: { failedSteps: failed.map(s => s.index) }
    }
  }
  return { status, steps, result, ...(error ? { error } : {}), usage, durationMs }
}

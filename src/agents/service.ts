// The agent service: resolves agent and method, validates the input, serves from the response cache,
// otherwise runs the method (LLM call with one repair retry, or the method's own run()), validates the
// output, caches it, and reports every invocation to the hooks. Framework-free: dependencies come in.
import { randomUUID } from 'node:crypto'
import { Value } from 'typebox/value'
import {
  CancelledError,
  InternalError,
  LlmInvalidOutputError,
  NotFoundError,
  ShuttingDownError,
  ValidationError,
  withDetails
} from '../errors.js'
import { parseModelJson } from '../llm/json.js'
import type { GenerateRequest, GenerateResult, LlmProvider, Usage } from '../llm/types.js'
import { cacheKey, cacheNamespace, type ResponseCache } from '../cache/response-cache.js'
import type { UsageLedger } from '../store/usage-ledger.js'
import { findAgent, findMethod } from './index.js'
import { abortSignalOf, LazyAbortController, type CallController, type CallSignal } from './call-abort.js'
import { callProvider, type CallDeps, type CallScope, type CallTally, type ReleasablePrompt } from './llm-call.js'
import { checkOutput, validateInput, type FieldProblem } from './validate.js'
import { unknownAgent } from './request-rules.js'
import type {
  AgentDefinition,
  AgentMethod,
  AgentName,
  AgentServiceHooks,
  InvocationRecord,
  InvokeRequest,
  InvokeResult,
  InvokeUsage,
  ModelTier
} from './types.js'

export type CacheOperation = 'get' | 'set' | 'clear'
export type CacheResult = 'hit' | 'miss' | 'ok' | 'error'

export interface AgentServiceDeps {
  definitions: Record<AgentName, AgentDefinition>
  llm: {
    provider: LlmProvider
    modelFor(tier: ModelTier): string
    price(model: string, usage: Pick<Usage, 'inputTokens' | 'outputTokens'>): number
  }
  cache: ResponseCache
  /** REDIS_KEY_PREFIX: cache keys start with it. */
  keyPrefix: string
  ledger?: UsageLedger
  /** Replaces every method's cache TTL (CACHE_TTL_OVERRIDE_SECONDS). */
  cacheTtlOverride?: number
  log?: { warn(details: object, message: string): void }
  onCacheOperation?(agent: AgentName, operation: CacheOperation, result: CacheResult): void
}

export interface AgentService {
  definitions: Record<AgentName, AgentDefinition>
  invoke(req: InvokeRequest): Promise<InvokeResult>
  addHooks(hooks: AgentServiceHooks): void
  /** Invocations running now (shutdown waits for them, then aborts the rest). */
  readonly inFlight: number
  /**
   * Shutdown: refuses new invocations and aborts the running ones; each fails with 503 AMK_SHUTTING_DOWN
   * once its provider call has settled and its usage row is written. Returns how many were aborted.
   */
  abortInFlight(): number
  cache: { clear(agent: AgentName, pattern?: string): Promise<number>, size(agent: AgentName): Promise<number> }
}

/** Usage summed over one invocation (a composite method adds its sub-invocations). */
class Tally implements CallTally {
  inputTokens = 0
  outputTokens = 0
  costUsd = 0
  estimated = false
  /** Distinct, in order of use. An exact-size array: a Set's table is a few hundred bytes per open stream. */
  models: readonly string[] = []
  /** Provider calls made, whatever their outcome. */
  calls = 0
  /** Settlements of its provider calls still being written (none during a call: nothing held per open stream). */
  #settlements: Array<Promise<unknown>> | undefined
  add (
    usage: { inputTokens: number; outputTokens: number; costUsd: number; estimated?: boolean },
    models: Iterable<string>,
    calls = 0
  ) {
    this.calls += calls
    this.inputTokens += usage.inputTokens
    this.outputTokens += usage.outputTokens
    this.costUsd = Math.round((this.costUsd + usage.costUsd) * 1e8) / 1e8
    this.estimated ||= usage.estimated ?? false
    for (const model of models) if (!this.models.includes(model)) this.models = this.models.concat(model)
  }

  get model () {
    return this.models.join('+') || 'none'
  }

  settling (write: Promise<unknown>) {
    (this.#settlements ??= []).push(write)
  }

  /** Resolves once every settlement held is written (or buffered); the writes never reject. */
  written (): Promise<unknown> | undefined {
    return this.#settlements && Promise.all(this.#settlements)
  }

  usage () {
    return {
      inputTokens: this.inputTokens,
      outputTokens: this.outputTokens,
      costUsd: this.costUsd,
      model: this.model,
      ...(this.estimated ? { estimated: true } : {})
    }
  }
}

/**
 * The provider request of a method's LLM call. It holds its prompt until the provider has started answering
 * (releasePrompt, at a stream's first delta), and renders it again from the input if read after that (the
 * trace): an open stream would otherwise keep its whole prompt, about a kilobyte (issue 16). Prompts are pure
 * functions of the validated input. A class with private fields and a getter on the prototype, so the
 * request keeps V8's fast properties (an object literal with a getter is a dictionary of about 450 bytes).
 */
class MethodRequest implements ReleasablePrompt {
  readonly system: string
  readonly responseSchema: object
  readonly task: { agent: AgentName, method: string, input: Record<string, unknown> }
  readonly temperature?: number
  readonly #method: AgentMethod
  #prompt: string | undefined

  constructor (
    readonly model: string,
    agent: AgentName,
    method: AgentMethod,
    input: Record<string, unknown>,
    readonly signal?: CallSignal
  ) {
    const { system, prompt } = method.prompt(input)
    this.system = system
    this.#prompt = prompt
    this.#method = method
    this.responseSchema = method.output
    this.task = { agent, method: method.name, input }
    this.temperature = method.temperature
  }

  get prompt (): string {
    return this.#prompt ?? this.#method.prompt(this.task.input).prompt
  }

  releasePrompt (): void {
    this.#prompt = undefined
  }
}

function repairPrompt (prompt: string, previous: string, problems: FieldProblem[]): string {
  return (
    `${prompt}\n\nYour previous answer could not be used:\n` +
    `${problems.map(p => `- ${p.field} ${p.message}`).join('\n')}\n` +
    `Previous answer:\n${previous.slice(0, 6000)}\n\n` +
    'Return the corrected answer: one JSON object matching the response schema exactly.'
  )
}

/**
 * What a failed invocation spent, on its error as `usage` (a coordinator step reports it): not enumerable, so
 * it stays out of responses and logs. An error that cannot take it (frozen, not an object) goes without.
 */
function spentOn (error: unknown, usage: InvokeUsage): void {
  if (typeof error !== 'object' || error === null) return
  try {
    Object.defineProperty(error, 'usage', { value: usage, configurable: true })
  } catch {}
}

/** The error a shutdown-aborted invocation reports (the client may retry on another replica). */
const shuttingDown = () =>
  withDetails(
    new ShuttingDownError(),
    { reason: 'The invocation was aborted because this instance is shutting down; retry it' },
    { 'retry-after': '1' }
  )

/** An invocation once resolved and validated. */
interface Invocation {
  definition: AgentDefinition
  method: AgentMethod
  input: Record<string, unknown>
  traceId: string
}

/** What aborts the invocation: its controller's signal (a lazy controller is its own), else the caller's. */
const signalOf = (req: InvokeRequest): CallSignal | undefined => (req.controller ? req.controller.signal : req.signal)

const requestAborted = (req: InvokeRequest): boolean => signalOf(req)?.aborted ?? false

/** The scope of an invocation's provider calls. */
function callScope (req: InvokeRequest, agent: AgentName, method: string, traceId: string): CallScope {
  return {
    agent,
    method,
    caller: req.caller,
    traceId,
    parentTraceId: req.parentTraceId,
    streamId: req.streamId,
    runId: req.runId,
    signal: signalOf(req),
    onDelta: req.onDelta
  }
}

export function createAgentService (deps: AgentServiceDeps): AgentService {
  const { definitions, cache, keyPrefix } = deps
  const running = new Set<CallController>()
  let stopping = false
  const hooks: AgentServiceHooks[] = []
  const warn = (details: object, message: string) => deps.log?.warn(details, message)
  const callDeps: CallDeps = { provider: deps.llm.provider, price: deps.llm.price, hooks, ledger: deps.ledger, warn }
  const neverAborted = new AbortController().signal

  function resolveAgent (agentName: string): AgentDefinition {
    const definition = findAgent(definitions, agentName)
    if (!definition) {
      throw unknownAgent(agentName, Object.keys(definitions))
    }
    return definition
  }

  function resolve (agentName: string, methodName: string): { definition: AgentDefinition, method: AgentMethod } {
    const definition = resolveAgent(agentName)
    const method = findMethod(definition, methodName)
    if (!method) {
      throw withDetails(new NotFoundError(`Agent '${agentName}' has no method '${methodName}'`), {
        agent: agentName,
        availableMethods: Object.keys(definition.methods)
      })
    }
    return { definition, method }
  }

  function observe (operation: CacheOperation, agent: AgentName, result: CacheResult) {
    try { deps.onCacheOperation?.(agent, operation, result) } catch (err) { warn({ err }, 'cache observer failed') }
  }

  /**
   * The method's LLM call, its answer checked, with one repair attempt. Not an async function: a stream's
   * first call lasts the stream's whole life, and an awaiting frame would stay parked all along (its register
   * file, two await closures and a reaction, about half a kilobyte per open stream); this holds one reaction.
   */
  function generate (
    scope: CallScope,
    definition: AgentDefinition,
    method: AgentMethod,
    input: Record<string, unknown>,
    tally: Tally
  ): Promise<unknown> {
    let request: MethodRequest
    try {
      request = new MethodRequest(
        deps.llm.modelFor(method.model ?? definition.defaultModel),
        definition.name,
        method,
        input,
        scope.signal
      )
    } catch (error) {
      return Promise.reject(error) // as from an async function: a prompt that cannot be built rejects
    }
    return callProvider(callDeps, scope, request, Boolean(scope.onDelta), tally)
      .then(first => checkedOrRepaired(first.result, request, scope, definition, method, tally))
  }

  async function checkedOrRepaired (
    first: GenerateResult,
    request: MethodRequest,
    scope: CallScope,
    definition: AgentDefinition,
    method: AgentMethod,
    tally: Tally
  ): Promise<unknown> {
    const firstCheck = checkOutput(method.output, first.json ?? parseModelJson(first.text))
    if (firstCheck.ok) return firstCheck.value
    // One repair attempt, on the model that answered, without streaming.
    const repair: GenerateRequest = {
      model: first.model,
      system: request.system,
      prompt: repairPrompt(request.prompt, first.text, firstCheck.problems),
      responseSchema: request.responseSchema,
      task: request.task,
      temperature: request.temperature,
      signal: request.signal
    }
    const second = await callProvider(callDeps, { ...scope, onDelta: undefined }, repair, false, tally)
    const secondCheck = checkOutput(method.output, second.result.json ?? parseModelJson(second.result.text))
    if (secondCheck.ok) return secondCheck.value
    throw withDetails(
      new LlmInvalidOutputError(
        `The model's answer for ${definition.name}.${method.name} did not match its schema, even after a repair attempt`
      ),
      { model: second.result.model, problems: secondCheck.problems }
    )
  }

  /** The response cache's answer for `key`, or null (a failed read is a miss, observed). */
  async function cachedAnswer (key: string, agent: AgentName) {
    const hit = await cache.get(key).catch(() => { observe('get', agent, 'error'); return null })
    observe('get', agent, hit ? 'hit' : 'miss')
    return hit
  }

  /** Reports an ended invocation to the hooks. */
  function report (
    req: InvokeRequest,
    call: Invocation,
    outcome: { data: unknown, cached: boolean, failure: unknown, usage: InvokeUsage },
    startedAt: number,
    started: number
  ): void {
    const { failure } = outcome
    const record: InvocationRecord = {
      traceId: call.traceId,
      parentTraceId: req.parentTraceId,
      agent: call.definition.name,
      method: call.method.name,
      caller: req.caller,
      input: call.input,
      output: outcome.data,
      cached: outcome.cached,
      usage: outcome.usage,
      startedAt,
      durationMs: performance.now() - started,
      status: failure === undefined ? 'success' : requestAborted(req) ? 'cancelled' : 'error',
      ...(failure !== undefined
        ? {
            error: {
              code: String((failure as { code?: string }).code ?? 'AMK_INTERNAL'),
              message: (failure as Error).message
            }
          }
        : {})
    }
    for (const hook of hooks) {
      try { hook.onInvocation?.(record) } catch (err) { warn({ err }, 'onInvocation hook failed') }
    }
  }

  /**
   * One invocation. `untrack` runs once it has ended, however it ends: track() hands the caller's controller
   * over this way instead of awaiting in a frame of its own, which would stay parked for an open stream's
   * whole life (about half a kilobyte each). For the same reason this frame, parked for a stream's life, keeps
   * few registers and no closures: the cache read, the report and the call's scope are made by helpers.
   */
  async function execute (req: InvokeRequest, parent?: Tally, untrack?: () => void): Promise<InvokeResult> {
    const started = performance.now()
    const startedAt = Date.now()
    let call: Invocation
    try {
      const { definition, method } = resolve(req.agent, req.method)
      call = { definition, method, input: validateInput(method.input, req.input, method.refine), traceId: randomUUID() }
    } catch (error) {
      untrack?.()
      throw error
    }
    const tally = new Tally()
    const key = cacheKey(keyPrefix, call.definition.name, call.method.name, call.input)
    let data: unknown
    let cached = false
    let failure: unknown
    try {
      if (requestAborted(req)) throw new CancelledError('The request was cancelled')
      const hit = req.noCache ? null : await cachedAnswer(key, call.definition.name)
      if (hit) {
        data = hit.data
        cached = true
        tally.add({ inputTokens: 0, outputTokens: 0, costUsd: 0 }, [hit.model])
      } else {
        const { definition, method, input } = call
        const scope = callScope(req, definition.name, method.name, call.traceId)
        data = method.run
          ? await runComposite(method, input, scope, req, tally)
          : await generate(scope, definition, method, input, tally)
        const ttl = deps.cacheTtlOverride ?? method.cacheTtl
        await cache.set(key, { data, model: tally.model, createdAt: Date.now() }, ttl)
          .then(() => observe('set', definition.name, 'ok'), () => observe('set', definition.name, 'error'))
      }
      const durationMs = Math.round(performance.now() - started)
      return { data, usage: tally.usage(), cached, durationMs, traceId: call.traceId }
    } catch (error) {
      failure = error
      // Aborted by shutdown: the client may retry on another replica (the record keeps the error itself).
      const thrown = req.controller?.signal.reason === 'shutdown' ? shuttingDown() : error
      if (tally.calls > 0) spentOn(thrown, tally.usage())
      throw thrown
    } finally {
      // The provider calls' settlements were written while the answer was checked and cached: the invocation
      // ends, and its caller gets the answer, once they are stored (or buffered), as before.
      await tally.written()
      untrack?.()
      parent?.add(tally.usage(), tally.models, tally.calls)
      report(req, call, { data, cached, failure, usage: tally.usage() }, startedAt, started)
    }
  }

  /** A method with its own run(): it may call the LLM (ctx.generate) and other methods (ctx.invoke). */
  async function runComposite (
    method: AgentMethod,
    input: Record<string, unknown>,
    scope: CallScope,
    req: InvokeRequest,
    tally: Tally
  ) {
    const { definition } = resolve(scope.agent, method.name)
    const value = await method.run!(input, {
      signal: scope.signal ? abortSignalOf(scope.signal) : neverAborted, // fetch in a method's tools needs a real one
      generate: generateInput => generate(scope, definition, method, generateInput, tally),
      invoke: async (agent, name, subInput, output) => {
        const { data } = await execute(
          {
            agent,
            method: name,
            input: subInput,
            caller: req.caller,
            signal: scope.signal,
            noCache: req.noCache,
            parentTraceId: scope.traceId,
            streamId: req.streamId,
            runId: req.runId
          },
          tally
        )
        // The callee validated its output; this check ties it to the schema the caller named.
        if (!Value.Check(output, data)) {
          throw new InternalError(
            `${agent}.${name} did not answer with the output schema ${scope.agent}.${method.name} expects`
          )
        }
        return data
      }
    })
    const checked = checkOutput(method.output, value)
    if (!checked.ok) {
      throw withDetails(
        new InternalError(`${scope.agent}.${method.name} assembled an invalid result`),
        checked.problems
      )
    }
    return checked.value
  }

  /** A top-level invocation, tracked so shutdown can abort it (its signal also follows the caller's). */
  function track (req: InvokeRequest): Promise<InvokeResult> {
    if (stopping) return Promise.reject(shuttingDown())
    // The caller's own controller, when it gave one: shutdown aborts the caller too, which then sees why.
    const { controller } = req
    if (controller) {
      running.add(controller)
      return execute(req, undefined, () => running.delete(controller))
    }
    return trackOwn(req)
  }

  function trackOwn (req: InvokeRequest): Promise<InvokeResult> {
    // One controller per call, aborted by shutdown or (forwarding its reason) by the caller's signal, whose
    // listener goes when the call ends: AbortSignal.any costs a composite signal and weak refs per call.
    const own = new LazyAbortController()
    const caller = req.signal
    const follow = () => own.abort(caller?.reason)
    if (caller?.aborted) follow()
    else caller?.addEventListener('abort', follow, { once: true })
    running.add(own)
    return execute({ ...req, signal: undefined, controller: own }, undefined, () => {
      caller?.removeEventListener('abort', follow)
      running.delete(own)
    })
  }

  return {
    definitions,
    invoke: track,
    addHooks (hookSet) { hooks.push(hookSet) },
    get inFlight () { return running.size },
    abortInFlight () {
      stopping = true
      const aborted = running.size
      for (const controller of running) controller.abort('shutdown')
      return aborted
    },
    cache: {
      async clear (agent, pattern = '*') {
        resolveAgent(agent)
        if (pattern.length > 200 || /[\r\n\0]/.test(pattern)) { throw new ValidationError('pattern must be at most 200 printable characters') }
        try {
          const removed = await cache.clear(cacheNamespace(keyPrefix, agent), pattern)
          observe('clear', agent, 'ok')
          return removed
        } catch (error) {
          observe('clear', agent, 'error')
          throw error
        }
      },
      size: async (agent) => cache.size(cacheNamespace(keyPrefix, resolveAgent(agent).name))
    }
  }
}

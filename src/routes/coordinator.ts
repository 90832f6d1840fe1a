// Coordinator routes (DESIGN §4.5, §9). Thin: TypeBox bodies, policy in route config, the coordinator
// service does the rest. Every POST that runs a workflow answers the run as JSON, or — with
// `Accept: text/event-stream` — streams its events (so does GET /runs/:runId, following a stored run);
// `Idempotency-Key` makes a repeat return the same run.
import type { FastifyReply, FastifyRequest, FastifySchemaValidationError } from 'fastify'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { cacheBypass } from '../agents/request-rules.js'
import { AGGREGATORS } from '../coordinator/aggregators.js'
import { LIMITS } from '../coordinator/plan.js'
import type { RunHandle, RunKind } from '../coordinator/service.js'
import { streamRun } from '../coordinator/sse.js'
import type { WorkflowSpec } from '../coordinator/types.js'
import { prepareWorkflow, WORKFLOWS } from '../coordinator/workflows.js'
import {
  CatalogSchema,
  HierarchicalBodySchema,
  ParallelBodySchema,
  PredefinedWorkflowBodySchema,
  RunSchema,
  runResponse,
  SequentialBodySchema,
  StatsSchema,
  WorkflowListSchema
} from '../schemas/coordinator.js'
import { OkSchema, ref } from '../schemas/common.js'
import { callerOf, callerSecurity as security, openSse } from './toolkit.js'

/**
 * Requests per minute per caller on the routes that start runs (a run is several agent calls; overridable
 * as scope "coordinator").
 */
export const COORDINATOR_RATE_LIMIT = 30

const tags = ['coordinator']

const Headers = Type.Object({
  'idempotency-key': Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 255,
      pattern: '^[\\x21-\\x7E]+$',
      description:
        'A repeat with the same key and body returns the same run (joining it while it runs) for 24 h; ' +
        'a different body → 422'
    })
  ),
  accept: Type.Optional(Type.String({ description: "`text/event-stream` streams the run's events" })),
  'cache-control': Type.Optional(
    Type.String({ description: "`no-cache` or `no-store` bypasses the agents' response cache" })
  )
})

/** Enum failures name the valid values (an unknown aggregator or workflow lists the real ones in `details`). */
const schemaErrorFormatter = (errors: FastifySchemaValidationError[], dataVar: string): Error => {
  for (const issue of errors) {
    const allowed = (issue.params as { allowedValues?: unknown }).allowedValues
    if (issue.keyword === 'enum' && Array.isArray(allowed)) issue.message = `must be one of: ${allowed.join(', ')}`
  }
  return new Error(`${dataVar} ${errors.map(e => e.message).join(', ')}`)
}

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const service = app.coordinator
  const runConfig = {
    permission: 'agent:execute' as const,
    rateLimits: [{ scope: 'coordinator', max: COORDINATOR_RATE_LIMIT }]
  }
  const runSchema = (operationId: string, summary: string) => ({
    operationId, tags, summary, security, headers: Headers, response: { 200: runResponse }
  })

  const wantsEvents = (request: FastifyRequest) => /text\/event-stream/i.test(request.headers.accept ?? '')
  const goneSignal = (reply: FastifyReply) => {
    const gone = new AbortController()
    reply.raw.once('close', () => gone.abort())
    return gone.signal
  }
  async function stream (reply: FastifyReply, handle: RunHandle) {
    const { res, headers } = openSse(reply)
    await streamRun(res, headers, handle, {
      heartbeatMs: app.config.STREAM_HEARTBEAT_MS,
      retryMs: app.config.STREAM_RETRY_MS
    })
  }

  async function run (
    request: FastifyRequest,
    reply: FastifyReply,
    kind: RunKind,
    spec: WorkflowSpec,
    workflowName?: string
  ) {
    const headers = request.headers
    const events = wantsEvents(request)
    const handle = await service.start({
      caller: callerOf(request),
      kind,
      body: request.body,
      spec,
      ...(workflowName ? { workflowName } : {}),
      ...(typeof headers['idempotency-key'] === 'string' ? { idempotencyKey: headers['idempotency-key'] } : {}),
      noCache: cacheBypass(headers),
      streamTokens: events,
      signal: goneSignal(reply)
    })
    reply.header('x-run-id', handle.runId)
    if (handle.replayed) reply.header('idempotent-replayed', 'true')
    if (!events) return reply.code(200).send(await handle.done)
    await stream(reply, handle)
  }

  app.post(
    '/sequential',
    {
      config: runConfig,
      schemaErrorFormatter,
      schema: {
        ...runSchema('runSequentialWorkflow', 'Run agent steps in order, each seeing earlier results'),
        body: ref(SequentialBodySchema)
      }
    },
    async (request, reply) => run(request, reply, 'sequential', { strategy: 'sequential', ...request.body })
  )

  app.post(
    '/parallel',
    {
      config: runConfig,
      schemaErrorFormatter,
      schema: {
        ...runSchema('runParallelWorkflow', 'Run agent tasks at once; all settle, each with its status'),
        body: ref(ParallelBodySchema)
      }
    },
    async (request, reply) => run(request, reply, 'parallel', { strategy: 'parallel', ...request.body })
  )

  app.post(
    '/hierarchical',
    {
      config: runConfig,
      schemaErrorFormatter,
      schema: {
        ...runSchema(
          'runHierarchicalWorkflow',
          'A master step, then sub-agents in parallel with its data, combined by a named aggregator'
        ),
        body: ref(HierarchicalBodySchema)
      }
    },
    async (request, reply) => run(request, reply, 'hierarchical', { strategy: 'hierarchical', ...request.body })
  )

  app.post(
    '/workflow',
    {
      config: runConfig,
      schemaErrorFormatter,
      schema: {
        ...runSchema('runPredefinedWorkflow', 'Run a predefined workflow (trip-package, trip-campaign, launch-plan)'),
        body: ref(PredefinedWorkflowBodySchema)
      }
    },
    async (request, reply) => {
      const { workflowName, input } = request.body
      return run(request, reply, 'workflow', prepareWorkflow(workflowName, input), workflowName)
    }
  )

  app.get(
    '/workflows',
    {
      config: { permission: 'agent:execute' },
      schema: {
        operationId: 'listWorkflows',
        tags,
        summary: 'Predefined workflows: steps and input schema; the named aggregators',
        security,
        response: { 200: ref(WorkflowListSchema) }
      }
    },
    async () => ({
      workflows: Object.values(WORKFLOWS).map(w => ({
        name: w.name,
        description: w.description,
        strategy: w.strategy,
        ...(w.aggregator ? { aggregator: w.aggregator } : {}),
        steps: w.steps,
        inputSchema: w.input
      })),
      aggregators: Object.entries(AGGREGATORS).map(([name, a]) => ({ name, description: a.description }))
    })
  )

  app.get(
    '/agents',
    {
      config: { permission: 'agent:execute' },
      schema: {
        operationId: 'listCoordinatorAgents',
        tags,
        summary: 'Agents and methods a workflow step may call, with their input schemas',
        security,
        response: { 200: ref(CatalogSchema) }
      }
    },
    async () => ({
      agents: Object.values(app.agents.definitions).map(d => ({
        name: d.name,
        description: d.description,
        capabilities: d.capabilities,
        methods: Object.values(d.methods).map(m => ({ name: m.name, summary: m.summary, inputSchema: m.input }))
      })),
      limits: { steps: LIMITS.steps, parallelTasks: LIMITS.parallelTasks }
    })
  )

  app.get(
    '/stats',
    {
      config: { permission: 'agent:execute' },
      schema: {
        operationId: 'getCoordinatorStats',
        tags,
        summary:
          'Runs by status and strategy, average duration, per-agent calls and success rate ' +
          '(since the last reset, all replicas)',
        security,
        response: { 200: ref(StatsSchema) }
      }
    },
    async () => service.stats()
  )

  app.post(
    '/stats/reset',
    {
      config: { permission: 'agent:manage' },
      schema: {
        operationId: 'resetCoordinatorStats',
        tags,
        summary: 'Start the coordinator statistics afresh (runs stay stored)',
        security,
        response: { 200: ref(OkSchema) }
      }
    },
    async request => {
      await service.resetStats(callerOf(request))
      return { success: true, message: 'coordinator statistics reset' }
    }
  )

  const RunParams = Type.Object({ runId: Type.String({ format: 'uuid' }) })

  app.get(
    '/runs/:runId',
    {
      config: { permission: 'agent:execute' },
      schema: {
        operationId: 'getWorkflowRun',
        tags,
        summary:
          'A run with its steps, timings and usage (its owner, or agent:stats); ' +
          'with Accept: text/event-stream, its events until it ends',
        security,
        params: RunParams,
        response: { 200: runResponse }
      }
    },
    async (request, reply) => {
      if (!wantsEvents(request)) return service.get(request.params.runId, callerOf(request))
      const handle = await service.follow(request.params.runId, callerOf(request), goneSignal(reply))
      reply.header('x-run-id', handle.runId)
      await stream(reply, handle)
    }
  )

  app.post(
    '/runs/:runId/cancel',
    {
      config: { permission: 'agent:execute' },
      schema: {
        operationId: 'cancelWorkflowRun',
        tags,
        summary:
          'Cancel a running run: in-flight provider calls are aborted; ' +
          'partial results are kept (its owner, or agent:manage)',
        security,
        params: RunParams,
        response: { 200: ref(RunSchema) }
      }
    },
    async request => service.cancel(request.params.runId, callerOf(request))
  )
}

export default routes

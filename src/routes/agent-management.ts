// Agent management (DESIGN §4.3): list, overview, per-agent health, status, metrics and recent traces,
// response-cache clear and warm, statistics reset. Every figure comes from app.agentStats and
// app.tracer, which the agent service feeds. Static paths (/list, /overview) and the longer
// /:agent/… paths never clash with the invoke routes POST /api/agents/:agent/:method.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { findAgent } from '../agents/index.js'
import { unknownAgent } from '../agents/request-rules.js'
import type { AgentDefinition, AgentName } from '../agents/types.js'
import { BadRequestError, toPublicError } from '../errors.js'
import { cachePattern } from '../cache/legacy-pattern.js'
import { ref, unavailableFields } from '../schemas/common.js'
import {
  AgentHealthSchema,
  AgentHealthUnavailableSchema,
  AgentListSchema,
  AgentMetricsSchema,
  AgentOverviewSchema,
  AgentParamsSchema,
  AgentStatusSchema,
  AgentTracesSchema,
  CacheClearBodySchema,
  CacheClearSchema,
  CacheWarmBodySchema,
  CacheWarmSchema,
  StatsResetSchema,
  TracesQuerySchema
} from '../schemas/agent-management.js'
import type { HealthStatus } from '../schemas/common.js'
import { callerSecurity as security } from './toolkit.js'

const rank: Record<HealthStatus, number> = { healthy: 0, degraded: 1, unhealthy: 2 }
const WARM_CONCURRENCY = 4

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const tags = ['agents']
  const definitions: Readonly<Record<string, AgentDefinition>> = app.agents.definitions
  const names = Object.keys(definitions)

  /** The agent named in the URL; `__proto__`, `constructor`… are unknown names (404), never prototype members. */
  function definition (agent: string): AgentDefinition {
    const found = findAgent(definitions, agent)
    if (!found) throw unknownAgent(agent, names)
    return found
  }

  async function agentHealth (agent: string) {
    const verdict = app.agentStats.health(agent)
    const provider = await app.llm.provider.check().catch((error: Error) => ({ ok: false, message: error.message }))
    const status: HealthStatus = !provider.ok && rank[verdict.status] < rank.unhealthy ? 'unhealthy' : verdict.status
    const message = provider.ok ? verdict.message : `provider: ${provider.message}; ${verdict.message}`
    return { agent, ...verdict, status, message, provider, timestamp: new Date().toISOString() }
  }

  /** GET /list's answer, serialized at its first request. */
  let listBody: string | undefined
  app.get(
    '/list',
    {
      config: { permission: 'agent:read' },
      schema: {
        operationId: 'listAgents',
        tags,
        summary: 'Agents, their methods and capabilities',
        security,
        response: { 200: ref(AgentListSchema) }
      }
    },
    async (_request, reply) => {
      // The same for every caller for the process's life (definitions and models are fixed at start): serialized
      // once by the route's own serializer and sent as those bytes (issue 16: 4 KB of JSON per request).
      listBody ??= String(reply.serialize(agentList()))
      // A string with its content type set goes out as is (the schema's type does not describe the bytes).
      return reply.type('application/json; charset=utf-8').send(listBody as never)
    }
  )

  function agentList () {
    return {
      count: names.length,
      agents: names.map(name => {
        const def = definitions[name] // names: the definitions' own keys
        return {
          name,
          description: def.description,
          defaultModel: def.defaultModel,
          model: app.llm.modelFor(def.defaultModel),
          rateLimit: def.rateLimit,
          capabilities: def.capabilities,
          methods: Object.values(def.methods).map(m => ({
            name: m.name,
            summary: m.summary,
            path: `/api/agents/${name}/${m.name}`,
            cacheTtl: m.cacheTtl,
            rateLimit: m.rateLimit,
            model: m.model ?? def.defaultModel
          }))
        }
      })
    }
  }

  app.get(
    '/overview',
    {
      config: { permission: 'agent:stats' },
      schema: {
        operationId: 'getAgentsOverview',
        tags,
        summary: 'Per agent: calls, errors, cache hit rate, tokens, cost, latency',
        security,
        response: { 200: ref(AgentOverviewSchema) }
      }
    },
    async () => {
      const agents = await Promise.all(
        names.map(async name => ({
          ...(await app.agentStats.summary(name)),
          health: app.agentStats.health(name).status
        }))
      )
      const sum = (pick: (a: (typeof agents)[number]) => number) => agents.reduce((total, a) => total + pick(a), 0)
      return {
        timestamp: new Date().toISOString(),
        totals: {
          calls: sum(a => a.calls),
          errors: sum(a => a.errors),
          tokens: {
            input: sum(a => a.tokens.input),
            output: sum(a => a.tokens.output),
            total: sum(a => a.tokens.total)
          },
          costUsd: sum(a => a.costUsd)
        },
        agents
      }
    }
  )

  app.get('/:agent/health', {
    config: { permission: 'agent:read' },
    schema: {
      operationId: 'getAgentHealth',
      tags,
      summary: 'Agent health from its recent error rate and provider state; 200 healthy or degraded, 503 unhealthy',
      security,
      params: AgentParamsSchema,
      response: { 200: ref(AgentHealthSchema), 503: ref(AgentHealthUnavailableSchema) }
    }
  }, async (request, reply) => {
    const health = await agentHealth(definition(request.params.agent).name)
    if (health.status !== 'unhealthy') return reply.code(200).send(health)
    return reply.code(503).send({ ...health, status: 'unhealthy', ...unavailableFields(request.id, health.message) })
  })

  app.get(
    '/:agent/status',
    {
      config: { permission: 'agent:read' },
      schema: {
        operationId: 'getAgentStatus',
        tags,
        summary: 'Model, capabilities and statistics of an agent',
        security,
        params: AgentParamsSchema,
        response: { 200: ref(AgentStatusSchema) }
      }
    },
    async request => {
      const def = definition(request.params.agent)
      return {
        agent: def.name,
        description: def.description,
        provider: app.features.llmProvider,
        model: app.llm.modelFor(def.defaultModel),
        defaultModel: def.defaultModel,
        capabilities: def.capabilities,
        methods: Object.keys(def.methods),
        health: (await agentHealth(def.name)).status,
        statistics: await app.agentStats.summary(def.name)
      }
    }
  )

  app.get(
    '/:agent/metrics',
    {
      config: { permission: 'agent:stats' },
      schema: {
        operationId: 'getAgentMetrics',
        tags,
        summary: 'Performance, cost, cache and streaming figures, by method and by model',
        security,
        params: AgentParamsSchema,
        response: { 200: ref(AgentMetricsSchema) }
      }
    },
    async request => {
      const def = definition(request.params.agent)
      const detail = await app.agentStats.detail(def.name)
      const entries = app.agents.cache.size ? await app.agents.cache.size(def.name).catch(() => null) : null
      return { ...detail, cache: { ...detail.cache, entries } }
    }
  )

  app.get('/:agent/traces', {
    config: { permission: 'agent:stats' },
    schema: {
      operationId: 'getAgentTraces',
      tags,
      summary: 'Recent traces of an agent, newest first (kept in memory per replica, last 1,000)',
      security,
      params: AgentParamsSchema,
      querystring: TracesQuerySchema,
      response: { 200: ref(AgentTracesSchema) }
    }
  }, async (request) => {
    const def = definition(request.params.agent)
    const traces = app.tracer.recent(def.name, request.query.limit)
    return { agent: def.name, limit: request.query.limit, count: traces.length, traces }
  })

  app.post('/:agent/cache/clear', {
    config: { permission: 'cache:manage' },
    schema: {
      operationId: 'clearAgentCache',
      tags,
      summary: 'Delete cached responses of one agent (a glob pattern stays inside the agent\'s namespace)',
      security,
      params: AgentParamsSchema,
      body: CacheClearBodySchema,
      response: { 200: ref(CacheClearSchema) }
    }
  }, async (request) => {
    const def = definition(request.params.agent)
    const outcome = cachePattern(request.body?.pattern, {
      agent: def.name,
      methods: Object.keys(def.methods),
      agents: names
    })
    if (!outcome.ok) throw new BadRequestError(outcome.message)
    const { pattern, translatedFrom } = outcome
    const deleted = await app.agents.cache.clear(def.name, pattern)
    request.log.info({ agent: def.name, pattern, translatedFrom, deleted }, 'agent cache cleared')
    return { success: true, agent: def.name, pattern, deleted }
  })

  app.post('/:agent/cache/warm', {
    config: { permission: 'cache:manage' },
    schema: {
      operationId: 'warmAgentCache',
      tags,
      summary: 'Run the given requests through the agent so their responses are cached; reports warmed and failed',
      security,
      params: AgentParamsSchema,
      body: CacheWarmBodySchema,
      response: { 200: ref(CacheWarmSchema) }
    }
  }, async (request) => {
    const def = definition(request.params.agent)
    const items = request.body.requests
    const results = new Array(items.length)
    let next = 0
    const worker = async () => {
      while (next < items.length) {
        const index = next++
        const { method, input } = items[index]
        try {
          const result = await app.agents.invoke({
            agent: def.name as AgentName,
            method,
            input,
            caller: request.caller
          })
          results[index] = {
            index,
            method,
            status: 'warmed',
            alreadyCached: result.cached,
            durationMs: result.durationMs,
            traceId: result.traceId
          }
        } catch (err) {
          const error = toPublicError(err)
          if (error.statusCode >= 500) request.log.error({ err, agent: def.name, method }, 'cache warm request failed')
          results[index] = { index, method, status: 'failed', error }
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(WARM_CONCURRENCY, items.length) }, worker))
    const warmed = results.filter(r => r.status === 'warmed').length
    return { success: warmed === items.length, agent: def.name, warmed, failed: items.length - warmed, results }
  })

  app.post(
    '/:agent/stats/reset',
    {
      config: { permission: 'agent:manage' },
      schema: {
        operationId: 'resetAgentStats',
        tags,
        summary: "Reset one agent's statistics (other agents are untouched)",
        security,
        params: AgentParamsSchema,
        response: { 200: ref(StatsResetSchema) }
      }
    },
    async request => {
      const def = definition(request.params.agent)
      await app.agentStats.reset(def.name)
      request.log.info({ agent: def.name }, 'agent statistics reset')
      return { success: true, agent: def.name, message: `statistics of ${def.name} reset` }
    }
  )
}

export default routes

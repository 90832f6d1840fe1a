// The agent service as a plugin: builds the definitions (Google Places for hotels when configured), the
// response cache (Redis when configured, memory otherwise), the usage ledger and the service; exports
// turns service events into Prometheus metrics. (Each method's schemas are components: src/schemas/agents.ts.)
import fp from 'fastify-plugin'
import { createAgentDefinitions } from '../agents/index.js'
import { createAgentService, type AgentService } from '../agents/service.js'
import { createPlacesClient } from '../agents/travel/places.js'
import { createMemoryCache } from '../cache/memory-cache.js'
import { createRedisCache } from '../cache/redis-cache.js'
import { outcomeOf } from '../agents/stats-counters.js'

declare module 'fastify' {
  interface FastifyInstance {
    agents: AgentService
  }
}

const THROTTLE_MS = 30_000

export default fp(async function agents (app) {
  const { config } = app
  let lastCacheWarning = 0
  const places = config.GOOGLE_MAPS_API_KEY
    ? createPlacesClient({ apiKey: config.GOOGLE_MAPS_API_KEY, baseUrl: config.GOOGLE_PLACES_BASE_URL })
    : undefined
  const definitions = createAgentDefinitions({
    places,
    onPlacesError: err =>
      app.log.warn({ err: err.message }, 'Google Places search failed; hotels fall back to estimates')
  })
  const memory = createMemoryCache({ maxEntries: config.CACHE_MAX_ENTRIES })
  const cache = app.redis
    ? createRedisCache(app.redis, {
      fallback: memory,
      onError (operation, err) {
        if (Date.now() - lastCacheWarning < THROTTLE_MS) return
        lastCacheWarning = Date.now()
        app.log.warn({ operation, err: err.message }, 'response cache: Redis unavailable, using the in-memory cache')
      }
    })
    : memory

  const cacheOps = app.meters.counter('cache_operations_total', 'Agent response cache operations', [
    'agent',
    'operation',
    'result'
  ])
  const service = createAgentService({
    definitions,
    llm: app.llm,
    cache,
    keyPrefix: config.REDIS_KEY_PREFIX,
    ledger: app.usageLedger,
    cacheTtlOverride: config.CACHE_TTL_OVERRIDE_SECONDS,
    log: app.log,
    onCacheOperation: (agent, operation, result) => cacheOps.inc({ agent, operation, result })
  })
  app.decorate('agents', service)

  const calls = app.meters.counter('llm_calls_total', 'LLM provider calls', ['model', 'agent', 'status'])
  const duration = app.meters.histogram(
    'llm_call_duration_seconds',
    'LLM provider call duration',
    ['model', 'agent'],
    [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60]
  )
  const firstToken = app.meters.histogram(
    'llm_time_to_first_token_seconds',
    'Time to the first streamed token',
    ['model', 'agent'],
    [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10]
  )
  const tokens = app.meters.counter('llm_tokens_used_total', 'LLM tokens', ['model', 'agent', 'type'])
  const cost = app.meters.counter('llm_cost_dollars_total', 'LLM cost in USD (price table)', ['model', 'agent'])
  const executions = app.meters.counter('agent_executions_total', 'Agent method invocations (cached ones included)', [
    'agent',
    'method',
    'status'
  ])
  service.addHooks({
    onLlmCall (record) {
      const labels = { model: record.model, agent: record.agent }
      calls.inc({ ...labels, status: record.status })
      duration.observe(labels, record.durationMs / 1000)
      if (record.timeToFirstTokenMs !== undefined) firstToken.observe(labels, record.timeToFirstTokenMs / 1000)
      tokens.inc({ ...labels, type: 'input' }, record.usage.inputTokens)
      tokens.inc({ ...labels, type: 'output' }, record.usage.outputTokens)
      if (record.costUsd > 0) cost.inc(labels, record.costUsd)
      if (record.status !== 'cancelled') app.llm.recordOutcome(record.status === 'success')
    },
    onInvocation (record) {
      // rejected (budget, validation…) is its own status, as in /api/agents/overview, not an error
      executions.inc({ agent: record.agent, method: record.method, status: outcomeOf(record) })
    }
  })

  // The `agents` health component (error rates) is registered by the agent-stats plugin.
}, { name: 'agents', dependencies: ['config', 'health', 'redis', 'store', 'metrics', 'llm', 'usage-ledger'] })

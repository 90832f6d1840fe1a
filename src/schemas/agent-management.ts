// TypeBox schemas of the agent management routes (DESIGN §4.3): agent list, statistics, metrics,
// health, traces and cache operations. Components carry an $id and are registered by the routes plugin.
import { Type, type Static } from 'typebox'
import { HealthStatusSchema, ref, UnavailableFields } from './common.js'

const Count = (description?: string) => Type.Integer({ minimum: 0, ...(description ? { description } : {}) })
const Rate = (description: string) => Type.Number({ minimum: 0, maximum: 1, description })
const Tokens = Type.Object({ input: Count(), output: Count(), total: Count() })

export const AgentParamsSchema = Type.Object({
  agent: Type.String({ minLength: 1, maxLength: 64, description: 'Agent name: travel, content or innovation' })
})

export const LatencySchema = Type.Object({
  avg: Type.Number({ description: 'Mean over all counted calls (cluster-wide when scope is cluster)' }),
  p50: Type.Number(),
  p95: Type.Number(),
  p99: Type.Number(),
  max: Type.Number(),
  samples: Count('Calls behind the percentiles: this replica\'s most recent ones')
}, { $id: 'LatencySummary', description: 'Milliseconds per call' })

const callFigures = {
  calls: Count('Every invocation, cached or not, including rejected and cancelled ones'),
  successes: Count(),
  errors: Count('Failures of the agent or its provider (not client rejections)'),
  rejected: Count('Refused before the agent worked: validation, budget, rate limit'),
  cancelled: Count(),
  errorRate: Rate('errors / calls'),
  cache: Type.Object({ hits: Count(), misses: Count(), hitRate: Rate('hits / (hits + misses)') }),
  tokens: Tokens,
  costUsd: Type.Number({ minimum: 0, description: 'Cost of the provider calls, USD' }),
  llm: Type.Object({ calls: Count('Provider calls (including repair retries)'), errors: Count() }),
  latencyMs: ref(LatencySchema)
}

export const CallFiguresSchema = Type.Object(callFigures, { $id: 'AgentCallFigures' })

export const AgentStatsSchema = Type.Object(
  {
    agent: Type.String(),
    scope: Type.Union([Type.Literal('cluster'), Type.Literal('replica')], {
      description: 'cluster: counters shared by every replica through Redis; replica: this process only'
    }),
    since: Type.String({ format: 'date-time', description: 'Start of the counters (last reset)' }),
    ...callFigures,
    streams: Type.Object({ active: Count('Open on this replica'), started: Count() }),
    lastCallAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    lastError: Type.Union([
      Type.Object({ code: Type.String(), message: Type.String(), at: Type.String({ format: 'date-time' }) }),
      Type.Null()
    ])
  },
  { $id: 'AgentStats' }
)
export type AgentStatsResponse = Static<typeof AgentStatsSchema>

const ModelFigures = Type.Object({
  calls: Count(),
  errors: Count(),
  tokens: Tokens,
  costUsd: Type.Number({ minimum: 0 })
})

export const AgentMetricsSchema = Type.Object(
  {
    ...AgentStatsSchema.properties,
    byMethod: Type.Record(Type.String(), ref(CallFiguresSchema)),
    byModel: Type.Record(Type.String(), ModelFigures),
    cache: Type.Object({
      hits: Count(),
      misses: Count(),
      hitRate: Rate('hits / (hits + misses)'),
      entries: Type.Union([Count(), Type.Null()], {
        description: 'Cached responses of this agent now (null when unknown)'
      })
    })
  },
  { $id: 'AgentMetrics' }
)

export const AgentOverviewSchema = Type.Object({
  timestamp: Type.String({ format: 'date-time' }),
  totals: Type.Object({ calls: Count(), errors: Count(), tokens: Tokens, costUsd: Type.Number({ minimum: 0 }) }),
  agents: Type.Array(Type.Object({ ...AgentStatsSchema.properties, health: ref(HealthStatusSchema) }))
}, { $id: 'AgentOverview' })

const MethodInfo = Type.Object({
  name: Type.String(),
  summary: Type.String(),
  path: Type.String({ description: 'Invoke route' }),
  cacheTtl: Count('Seconds a response stays cached'),
  rateLimit: Count('Requests per minute per caller'),
  model: Type.String({ description: 'Model tier: flash or pro' })
})

export const AgentInfoSchema = Type.Object({
  name: Type.String(),
  description: Type.String(),
  defaultModel: Type.String({ description: 'Model tier: flash or pro' }),
  model: Type.String({ description: 'Concrete model serving the default tier' }),
  rateLimit: Count('Requests per minute per caller across the agent'),
  capabilities: Type.Array(Type.String()),
  methods: Type.Array(MethodInfo)
}, { $id: 'AgentInfo' })

export const AgentListSchema = Type.Object(
  { count: Count(), agents: Type.Array(ref(AgentInfoSchema)) },
  { $id: 'AgentList' }
)

export const AgentStatusSchema = Type.Object({
  agent: Type.String(),
  description: Type.String(),
  provider: Type.String({ description: 'LLM provider in use' }),
  model: Type.String(),
  defaultModel: Type.String(),
  capabilities: Type.Array(Type.String()),
  methods: Type.Array(Type.String()),
  health: ref(HealthStatusSchema),
  statistics: ref(AgentStatsSchema)
}, { $id: 'AgentStatus' })

export const AgentHealthSchema = Type.Object({
  agent: Type.String(),
  status: ref(HealthStatusSchema),
  message: Type.String(),
  errorRate: Rate('Errors / calls in the window, on this replica'),
  calls: Count('Calls in the window (rejections and cancellations excluded)'),
  errors: Count(),
  windowMs: Count(),
  minCalls: Count('Calls needed before the error rate is judged'),
  thresholds: Type.Object({ degraded: Rate('degraded above'), unhealthy: Rate('unhealthy above') }),
  provider: Type.Object({ ok: Type.Boolean(), message: Type.String() }),
  timestamp: Type.String({ format: 'date-time' })
}, { $id: 'AgentHealth' })

/** The 503 body: the agent's health, with the error fields (see UnavailableFields). */
export const AgentHealthUnavailableSchema = Type.Object({
  ...AgentHealthSchema.properties,
  ...UnavailableFields,
  status: Type.Literal('unhealthy')
}, { $id: 'AgentHealthUnavailable' })

export const AgentTraceSchema = Type.Object(
  {
    id: Type.String({ description: 'Trace id (the traceId of the invoke reply)' }),
    parentId: Type.Optional(Type.String({ description: 'Enclosing stream or workflow run' })),
    name: Type.String(),
    runType: Type.String(),
    agent: Type.Optional(Type.String()),
    operation: Type.String(),
    model: Type.Optional(Type.String()),
    status: Type.Union([Type.Literal('success'), Type.Literal('error'), Type.Literal('cancelled')]),
    cached: Type.Optional(Type.Boolean()),
    startTime: Type.String({ format: 'date-time' }),
    endTime: Type.String({ format: 'date-time' }),
    durationMs: Type.Number(),
    usage: Type.Object({
      inputTokens: Count(),
      outputTokens: Count(),
      costUsd: Type.Number(),
      estimated: Type.Optional(Type.Boolean())
    }),
    llmCalls: Count(),
    timeToFirstTokenMs: Type.Optional(Type.Number()),
    callerId: Type.Optional(Type.String()),
    error: Type.Optional(Type.Object({ code: Type.String(), message: Type.String() }))
  },
  { $id: 'AgentTrace' }
)

export const TracesQuerySchema = Type.Object({
  limit: Type.Integer({
    minimum: 1,
    maximum: 1000,
    default: 100,
    description: 'Most recent traces to return (newest first)'
  })
})

export const AgentTracesSchema = Type.Object({
  agent: Type.String(),
  limit: Count(),
  count: Count(),
  traces: Type.Array(ref(AgentTraceSchema))
}, { $id: 'AgentTraces' })

export const CacheClearBodySchema = Type.Object(
  {
    pattern: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 200,
        pattern: '^[A-Za-z0-9_.:*?\\[\\]-]+$',
        description:
          "Glob on the method/key part, inside this agent's namespace (e.g. `searchFlights*`); " +
          "all of the agent's entries when absent"
      })
    )
  },
  { additionalProperties: false }
)

export const CacheClearSchema = Type.Object({
  success: Type.Boolean(),
  agent: Type.String(),
  pattern: Type.String(),
  deleted: Count('Cached responses removed')
}, { $id: 'CacheClearResult' })

export const CacheWarmBodySchema = Type.Object({
  requests: Type.Array(Type.Object({
    method: Type.String({ minLength: 1, maxLength: 64 }),
    input: Type.Record(Type.String(), Type.Unknown(), { description: 'The method\'s input, as for its invoke route' })
  }, { additionalProperties: false }), { minItems: 1, maxItems: 50 })
}, { additionalProperties: false })

export const CacheWarmSchema = Type.Object(
  {
    success: Type.Boolean({ description: 'True when every request was warmed' }),
    agent: Type.String(),
    warmed: Count(),
    failed: Count(),
    results: Type.Array(
      Type.Object({
        index: Count(),
        method: Type.String(),
        status: Type.Union([Type.Literal('warmed'), Type.Literal('failed')]),
        alreadyCached: Type.Optional(Type.Boolean()),
        durationMs: Type.Optional(Type.Number()),
        traceId: Type.Optional(Type.String()),
        error: Type.Optional(
          Type.Object({
            statusCode: Type.Integer(),
            code: Type.String(),
            message: Type.String(),
            details: Type.Optional(Type.Unknown())
          })
        )
      })
    )
  },
  { $id: 'CacheWarmResult' }
)

export const StatsResetSchema = Type.Object({
  success: Type.Boolean(),
  agent: Type.String(),
  message: Type.String()
}, { $id: 'AgentStatsReset' })

/** Components to register (dependencies first). */
export const managementSchemas = [
  LatencySchema,
  CallFiguresSchema,
  AgentStatsSchema,
  AgentMetricsSchema,
  AgentOverviewSchema,
  AgentInfoSchema,
  AgentListSchema,
  AgentStatusSchema,
  AgentHealthSchema,
  AgentHealthUnavailableSchema,
  AgentTraceSchema,
  AgentTracesSchema,
  CacheClearSchema,
  CacheWarmSchema,
  StatsResetSchema
]

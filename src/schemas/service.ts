// TypeBox schemas of the service and health routes (GET /api, /api/status, /api/health, the probes),
// registered as named components by the schema registry (src/schemas/index.ts).
import { Type } from 'typebox'
import { ComponentHealthSchema, HealthStatusSchema, ref, UnavailableFields } from './common.js'

export const ServiceInfoSchema = Type.Object(
  {
    service: Type.String(),
    version: Type.String(),
    environment: Type.String(),
    features: Type.Object(
      {
        database: Type.String({ description: 'pglite or postgres' }),
        redis: Type.Boolean(),
        llmProvider: Type.String({
          description: 'Provider kind; its model and address only for agent:stats or the METRICS_TOKEN'
        }),
        langsmith: Type.Boolean(),
        supabaseAuth: Type.Boolean(),
        metricsPublic: Type.Boolean()
      },
      { additionalProperties: true }
    ),
    links: Type.Object({ docs: Type.String(), openapi: Type.String(), health: Type.String(), metrics: Type.String() })
  },
  { $id: 'ServiceInfo' }
)

export const StatusSchema = Type.Object({
  service: Type.String(),
  version: Type.String(),
  environment: Type.String(),
  ready: Type.Boolean(),
  uptimeSeconds: Type.Number(),
  memory: Type.Object({ rssMb: Type.Number(), heapUsedMb: Type.Number(), heapTotalMb: Type.Number() }),
  timestamp: Type.String({ format: 'date-time' })
}, { $id: 'ServiceStatus' })

export const HealthSchema = Type.Object({
  status: ref(HealthStatusSchema),
  timestamp: Type.String({ format: 'date-time' }),
  uptimeSeconds: Type.Number(),
  version: Type.String(),
  components: Type.Record(Type.String(), ref(ComponentHealthSchema))
}, { $id: 'HealthReport' })

// 503 bodies have their own names (HealthReportUnavailable, ProbeFailure) and carry the error fields
// (UnavailableFields), so a generated client's error type has `.code` whichever error it got.
export const HealthUnavailableSchema = Type.Object({
  ...HealthSchema.properties,
  ...UnavailableFields,
  status: Type.Literal('unhealthy')
}, { $id: 'HealthReportUnavailable', description: 'The health report when a component is unhealthy (503)' })

export const ProbeFailureSchema = Type.Object({
  ...UnavailableFields,
  status: Type.Union([Type.Literal('stalled'), Type.Literal('not_ready')]),
  reason: Type.Optional(Type.String()),
  eventLoopDelayMs: Type.Optional(Type.Number()),
  timestamp: Type.String({ format: 'date-time' })
}, { $id: 'ProbeFailure', description: 'A failed liveness or readiness probe (503)' })

export const ProbeSchema = Type.Object({
  status: Type.String(),
  reason: Type.Optional(Type.String()),
  eventLoopDelayMs: Type.Optional(Type.Number()),
  timestamp: Type.String({ format: 'date-time' })
}, { $id: 'ProbeResult' })

/** Components of the service and health routes. */
export const serviceSchemas = [
  ServiceInfoSchema,
  StatusSchema,
  HealthSchema,
  ProbeSchema,
  HealthUnavailableSchema,
  ProbeFailureSchema
]

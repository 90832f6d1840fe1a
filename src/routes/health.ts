// Health probes: component health (cached with its status code), liveness and readiness. Anonymous
// callers of /api/health see each component's kind and status; messages with addresses, hosts, ports or
// driver errors only reach agent:stats callers and the METRICS_TOKEN bearer (see public-view.ts).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { publicComponents, seesDetails } from './public-view.js'
import { UnavailableFields, unavailableFields } from '../schemas/common.js'

const HealthSchema = Type.Object({
  status: Type.Ref('HealthStatus'),
  timestamp: Type.String({ format: 'date-time' }),
  uptimeSeconds: Type.Number(),
  version: Type.String(),
  components: Type.Record(Type.String(), Type.Ref('ComponentHealth'))
}, { $id: 'HealthReport' })

// 503 bodies have their own names (HealthReportUnavailable, ProbeFailure) and carry the error fields
// (UnavailableFields), so a generated client's error type has `.code` whichever error it got.
const HealthUnavailableSchema = Type.Object({
  ...HealthSchema.properties,
  ...UnavailableFields,
  status: Type.Literal('unhealthy')
}, { $id: 'HealthReportUnavailable', description: 'The health report when a component is unhealthy (503)' })

const ProbeFailureSchema = Type.Object({
  ...UnavailableFields,
  status: Type.Union([Type.Literal('stalled'), Type.Literal('not_ready')]),
  reason: Type.Optional(Type.String()),
  eventLoopDelayMs: Type.Optional(Type.Number()),
  timestamp: Type.String({ format: 'date-time' })
}, { $id: 'ProbeFailure', description: 'A failed liveness or readiness probe (503)' })

const ProbeSchema = Type.Object({
  status: Type.String(),
  reason: Type.Optional(Type.String()),
  eventLoopDelayMs: Type.Optional(Type.Number()),
  timestamp: Type.String({ format: 'date-time' })
}, { $id: 'ProbeResult' })

const routes: FastifyPluginAsyncTypebox = async (app) => {
  app.addSchema(HealthSchema)
  app.addSchema(ProbeSchema)
  app.addSchema(HealthUnavailableSchema)
  app.addSchema(ProbeFailureSchema)
  const probe = { 200: Type.Ref('ProbeResult'), 503: Type.Ref('ProbeFailure') }
  const maxDelay = app.config.EVENT_LOOP_MAX_DELAY_MS

  app.get('/api/health', {
    // Public; a credential, when sent, only widens what is shown (metricsToken: the METRICS_TOKEN counts).
    config: { public: true, metricsToken: true },
    schema: {
      operationId: 'getHealth',
      tags: ['service'],
      summary: 'Component health; 200 healthy or degraded, 503 unhealthy. Anonymous callers see component kinds, not addresses or driver messages',
      response: { 200: Type.Ref('HealthReport'), 503: Type.Ref('HealthReportUnavailable') }
    }
  }, async (request, reply) => {
    const report = await app.health.run()
    const body = await seesDetails(app, request, reply) ? report.body : { ...report.body, components: publicComponents(app, report.body.components) }
    const failure = report.statusCode === 503 ? unavailableFields(request.id, 'One or more components are unhealthy') : {}
    return reply.code(report.statusCode).send({ ...body, ...failure })
  })

  app.get('/api/health/live', {
    config: { public: true },
    schema: { operationId: 'getLiveness', tags: ['service'], summary: 'Liveness: 503 when the event loop stalled past the threshold', response: probe }
  }, async (request, reply) => {
    const delay = Math.round(app.health.eventLoopDelayMs())
    const alive = delay <= maxDelay
    const reason = `event loop delay ${delay} ms exceeds ${maxDelay} ms`
    return reply.code(alive ? 200 : 503).send({
      status: alive ? 'alive' : 'stalled',
      eventLoopDelayMs: delay,
      timestamp: new Date().toISOString(),
      ...(alive ? {} : { reason, ...unavailableFields(request.id, reason) })
    })
  })

  app.get('/api/health/ready', {
    config: { public: true },
    schema: { operationId: 'getReadiness', tags: ['service'], summary: 'Readiness: 503 while starting, shutting down, or a required dependency is down', response: probe }
  }, async (request, reply) => {
    const { ready, reason } = await app.health.readiness()
    const failure = ready ? {} : unavailableFields(request.id, reason ?? 'Not ready')
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', timestamp: new Date().toISOString(), ...(reason ? { reason } : {}), ...failure })
  })
}

export default routes

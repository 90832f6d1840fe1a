// Health probes: component health (cached with its status code), liveness and readiness. Anonymous
// callers of /api/health see each component's kind and status; messages with addresses, hosts, ports or
// driver errors only reach agent:stats callers and the METRICS_TOKEN bearer (see public-view.ts).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { publicComponents, seesDetails } from './public-view.js'

const HealthSchema = Type.Object({
  status: Type.Ref('HealthStatus'),
  timestamp: Type.String({ format: 'date-time' }),
  uptimeSeconds: Type.Number(),
  version: Type.String(),
  components: Type.Record(Type.String(), Type.Ref('ComponentHealth'))
}, { $id: 'HealthReport' })

const ProbeSchema = Type.Object({
  status: Type.String(),
  reason: Type.Optional(Type.String()),
  eventLoopDelayMs: Type.Optional(Type.Number()),
  timestamp: Type.String({ format: 'date-time' })
}, { $id: 'ProbeResult' })

const routes: FastifyPluginAsyncTypebox = async (app) => {
  app.addSchema(HealthSchema)
  app.addSchema(ProbeSchema)
  const probe = { 200: Type.Ref('ProbeResult'), 503: Type.Ref('ProbeResult') }
  const maxDelay = app.config.EVENT_LOOP_MAX_DELAY_MS

  app.get('/api/health', {
    // Public; a credential, when sent, only widens what is shown (metricsToken: the METRICS_TOKEN counts).
    config: { public: true, metricsToken: true },
    schema: {
      operationId: 'getHealth',
      tags: ['service'],
      summary: 'Component health; 200 healthy or degraded, 503 unhealthy. Anonymous callers see component kinds, not addresses or driver messages',
      response: { 200: Type.Ref('HealthReport'), 503: Type.Ref('HealthReport') }
    }
  }, async (request, reply) => {
    const report = await app.health.run()
    const body = await seesDetails(app, request, reply) ? report.body : { ...report.body, components: publicComponents(app, report.body.components) }
    return reply.code(report.statusCode).send(body)
  })

  app.get('/api/health/live', {
    config: { public: true },
    schema: { operationId: 'getLiveness', tags: ['service'], summary: 'Liveness: 503 when the event loop stalled past the threshold', response: probe }
  }, async (_request, reply) => {
    const delay = Math.round(app.health.eventLoopDelayMs())
    const alive = delay <= maxDelay
    return reply.code(alive ? 200 : 503).send({
      status: alive ? 'alive' : 'stalled',
      eventLoopDelayMs: delay,
      timestamp: new Date().toISOString(),
      ...(alive ? {} : { reason: `event loop delay ${delay} ms exceeds ${maxDelay} ms` })
    })
  })

  app.get('/api/health/ready', {
    config: { public: true },
    schema: { operationId: 'getReadiness', tags: ['service'], summary: 'Readiness: 503 while starting, shutting down, or a required dependency is down', response: probe }
  }, async (_request, reply) => {
    const { ready, reason } = await app.health.readiness()
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', timestamp: new Date().toISOString(), ...(reason ? { reason } : {}) })
  })
}

export default routes

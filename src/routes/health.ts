// Health probes: component health (cached with its status code), liveness and readiness. Anonymous
// callers of /api/health see each component's kind and status; messages with addresses, hosts, ports or
// driver errors only reach agent:stats callers and the METRICS_TOKEN bearer (see public-view.ts).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { publicComponents, seesDetails } from './public-view.js'
import { ref, unavailableFields } from '../schemas/common.js'
import { HealthSchema, HealthUnavailableSchema, ProbeFailureSchema, ProbeSchema } from '../schemas/service.js'

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const probe = { 200: ref(ProbeSchema), 503: ref(ProbeFailureSchema) }
  const maxDelay = app.config.EVENT_LOOP_MAX_DELAY_MS

  app.get(
    '/',
    {
      // Public; a credential, when sent, only widens what is shown (metricsToken: the METRICS_TOKEN counts).
      config: { public: true, metricsToken: true },
      schema: {
        operationId: 'getHealth',
        tags: ['service'],
        summary:
          'Component health; 200 healthy or degraded, 503 unhealthy. ' +
          'Anonymous callers see component kinds, not addresses or driver messages',
        response: { 200: ref(HealthSchema), 503: ref(HealthUnavailableSchema) }
      }
    },
    async (request, reply) => {
      const report = await app.health.run()
      const body = (await seesDetails(app, request, reply))
        ? report.body
        : { ...report.body, components: publicComponents(app, report.body.components) }
      const failure =
        report.statusCode === 503 ? unavailableFields(request.id, 'One or more components are unhealthy') : {}
      return reply.code(report.statusCode).send({ ...body, ...failure })
    }
  )

  app.get(
    '/live',
    {
      config: { public: true },
      schema: {
        operationId: 'getLiveness',
        tags: ['service'],
        summary: 'Liveness: 503 when the event loop stalled past the threshold',
        response: probe
      }
    },
    async (request, reply) => {
      const delay = Math.round(app.health.eventLoopDelayMs())
      const alive = delay <= maxDelay
      const reason = `event loop delay ${delay} ms exceeds ${maxDelay} ms`
      return reply.code(alive ? 200 : 503).send({
        status: alive ? 'alive' : 'stalled',
        eventLoopDelayMs: delay,
        timestamp: new Date().toISOString(),
        ...(alive ? {} : { reason, ...unavailableFields(request.id, reason) })
      })
    }
  )

  app.get(
    '/ready',
    {
      config: { public: true },
      schema: {
        operationId: 'getReadiness',
        tags: ['service'],
        summary: 'Readiness: 503 while starting, shutting down, or a required dependency is down',
        response: probe
      }
    },
    async (request, reply) => {
      const { ready, reason } = await app.health.readiness()
      const failure = ready ? {} : unavailableFields(request.id, reason ?? 'Not ready')
      return reply.code(ready ? 200 : 503).send({
        status: ready ? 'ready' : 'not_ready',
        timestamp: new Date().toISOString(),
        ...(reason ? { reason } : {}),
        ...failure
      })
    }
  )
}

export default routes

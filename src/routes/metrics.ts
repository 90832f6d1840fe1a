// Prometheus exposition, a JSON snapshot and a reset. Public only with METRICS_PUBLIC=true; otherwise
// the METRICS_TOKEN bearer or a caller with agent:stats. Reset always needs agent:manage.
import type { FastifyContextConfig } from 'fastify'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { callerSecurity as security } from './toolkit.js'

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const readConfig: FastifyContextConfig = app.config.METRICS_PUBLIC
    ? { public: true }
    : { permission: 'agent:stats', metricsToken: true }

  app.get(
    '/',
    {
      config: { ...readConfig, disableMetrics: true },
      schema: {
        operationId: 'getMetrics',
        tags: ['metrics'],
        summary: 'Prometheus text exposition',
        security: app.config.METRICS_PUBLIC ? [] : security,
        response: {
          200: { description: 'Prometheus text format 0.0.4', content: { 'text/plain': { schema: Type.String() } } }
        }
      }
    },
    async (_request, reply) => {
      const body = await app.meters.registry.metrics()
      return reply.type(app.meters.registry.contentType).send(body)
    }
  )

  app.get(
    '/json',
    {
      config: readConfig,
      schema: {
        operationId: 'getMetricsJson',
        tags: ['metrics'],
        summary: 'Metrics as JSON',
        security: app.config.METRICS_PUBLIC ? [] : security,
        response: {
          200: Type.Object({
            timestamp: Type.String({ format: 'date-time' }),
            metrics: Type.Array(
              Type.Object(
                {
                  name: Type.String(),
                  help: Type.String(),
                  type: Type.String(),
                  values: Type.Array(Type.Unknown())
                },
                { additionalProperties: true }
              )
            )
          })
        }
      }
    },
    async () => ({
      timestamp: new Date().toISOString(),
      metrics: (await app.meters.registry.getMetricsAsJSON()) as never
    })
  )

  app.post('/reset', {
    config: { permission: 'agent:manage' },
    schema: {
      operationId: 'resetMetrics',
      tags: ['metrics'],
      summary: 'Reset every metric to zero',
      security,
      response: { 200: Type.Object({ success: Type.Boolean(), message: Type.String() }) }
    }
  }, async () => {
    app.meters.registry.resetMetrics()
    return { success: true, message: 'metrics reset' }
  })
}

export default routes

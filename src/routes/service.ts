// Service information: GET /api and the cheap GET /api/status. GET /api names the kind of each
// component to anonymous callers; the LLM server's address only to agent:stats or the METRICS_TOKEN.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { publicProvider, seesDetails } from './public-view.js'

const ServiceInfoSchema = Type.Object({
  service: Type.String(),
  version: Type.String(),
  environment: Type.String(),
  features: Type.Object({
    database: Type.String({ description: 'pglite or postgres' }),
    redis: Type.Boolean(),
    llmProvider: Type.String({ description: 'Provider kind; its model and address only for agent:stats or the METRICS_TOKEN' }),
    langsmith: Type.Boolean(),
    supabaseAuth: Type.Boolean(),
    metricsPublic: Type.Boolean()
  }, { additionalProperties: true }),
  links: Type.Object({ docs: Type.String(), openapi: Type.String(), health: Type.String(), metrics: Type.String() })
}, { $id: 'ServiceInfo' })

const StatusSchema = Type.Object({
  service: Type.String(),
  version: Type.String(),
  environment: Type.String(),
  ready: Type.Boolean(),
  uptimeSeconds: Type.Number(),
  memory: Type.Object({ rssMb: Type.Number(), heapUsedMb: Type.Number(), heapTotalMb: Type.Number() }),
  timestamp: Type.String({ format: 'date-time' })
}, { $id: 'ServiceStatus' })

export const SERVICE_NAME = 'amrikyy-agent-api'

const routes: FastifyPluginAsyncTypebox<{ version: string }> = async (app, opts) => {
  app.addSchema(ServiceInfoSchema)
  app.addSchema(StatusSchema)
  const mb = (bytes: number) => Math.round(bytes / 1048576 * 10) / 10

  app.get('/api', {
    // Public; a credential, when sent, only widens what is shown (metricsToken: the METRICS_TOKEN counts).
    config: { public: true, metricsToken: true },
    schema: { operationId: 'getServiceInfo', tags: ['service'], summary: 'Service information and links', response: { 200: Type.Ref('ServiceInfo') } }
  }, async (request, reply) => ({
    service: SERVICE_NAME,
    version: opts.version,
    environment: app.config.NODE_ENV,
    features: {
      database: app.db.kind,
      redis: app.redis !== null,
      llmProvider: await seesDetails(app, request, reply) ? app.features.llmProvider : publicProvider(app),
      langsmith: Boolean(app.config.LANGSMITH_API_KEY),
      supabaseAuth: Boolean(app.config.SUPABASE_URL),
      metricsPublic: app.config.METRICS_PUBLIC
    },
    links: { docs: '/docs', openapi: '/openapi.json', health: '/api/health', metrics: '/api/metrics' }
  }))

  app.get('/api/status', {
    config: { public: true },
    schema: { operationId: 'getServiceStatus', tags: ['service'], summary: 'Cheap status: readiness, uptime, memory', response: { 200: Type.Ref('ServiceStatus') } }
  }, async () => {
    const memory = process.memoryUsage()
    return {
      service: SERVICE_NAME,
      version: opts.version,
      environment: app.config.NODE_ENV,
      ready: app.lifecycle.state === 'ready',
      uptimeSeconds: Math.round(process.uptime()),
      memory: { rssMb: mb(memory.rss), heapUsedMb: mb(memory.heapUsed), heapTotalMb: mb(memory.heapTotal) },
      timestamp: new Date().toISOString()
    }
  })
}

export default routes

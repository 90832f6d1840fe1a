// Service information: GET /api and the cheap GET /api/status. GET /api names the kind of each
// component to anonymous callers; the LLM server's address only to agent:stats or the METRICS_TOKEN.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { ref } from '../schemas/common.js'
import { ServiceInfoSchema, StatusSchema } from '../schemas/service.js'
import { publicProvider, seesDetails } from './public-view.js'

const SERVICE_NAME = 'amrikyy-agent-api'

const routes: FastifyPluginAsyncTypebox<{ version: string }> = async (app, opts) => {
  const mb = (bytes: number) => Math.round(bytes / 1048576 * 10) / 10

  app.get(
    '/',
    {
      // Public; a credential, when sent, only widens what is shown (metricsToken: the METRICS_TOKEN counts).
      config: { public: true, metricsToken: true },
      schema: {
        operationId: 'getServiceInfo',
        tags: ['service'],
        summary: 'Service information and links',
        response: { 200: ref(ServiceInfoSchema) }
      }
    },
    async (request, reply) => ({
      service: SERVICE_NAME,
      version: opts.version,
      environment: app.config.NODE_ENV,
      features: {
        database: app.db.kind,
        redis: app.redis !== null,
        llmProvider: (await seesDetails(app, request, reply)) ? app.features.llmProvider : publicProvider(app),
        langsmith: Boolean(app.config.LANGSMITH_API_KEY),
        supabaseAuth: Boolean(app.config.SUPABASE_URL),
        metricsPublic: app.config.METRICS_PUBLIC
      },
      links: { docs: '/docs', openapi: '/openapi.json', health: '/api/health', metrics: '/api/metrics' }
    })
  )

  app.get(
    '/status',
    {
      config: { public: true },
      schema: {
        operationId: 'getServiceStatus',
        tags: ['service'],
        summary: 'Cheap status: readiness, uptime, memory',
        response: { 200: ref(StatusSchema) }
      }
    },
    async () => {
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
    }
  )
}

export default routes

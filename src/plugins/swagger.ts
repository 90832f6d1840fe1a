// OpenAPI 3.1 generated from the TypeBox route schemas (shared components keep their $id names),
// served at /openapi.json, with Swagger UI at /docs.
import fp from 'fastify-plugin'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import { polishDocument, publicSecurity } from '../schemas/openapi-polish.js'

export default fp(async function openapi (app, opts: { version: string }) {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Amrikyy Agent API',
        version: opts.version,
        description:
          'Travel, content and innovation LLM agents: ' +
          'typed invoke endpoints, SSE streaming, a multi-agent coordinator.',
        contact: { name: 'Amrikyy Agent API maintainers' },
        license: { name: 'MIT', identifier: 'MIT' }
      },
      servers: [{ url: '/' }],
      tags: [
        { name: 'service', description: 'Service information and health probes' },
        { name: 'metrics', description: 'Prometheus metrics and usage' },
        { name: 'auth', description: 'Login, tokens, API keys and users' },
        { name: 'agents', description: 'Agent invocation and management' },
        { name: 'stream', description: 'Server-Sent-Events streaming' },
        { name: 'coordinator', description: 'Multi-agent workflows' },
        { name: 'ag-ui', description: 'AG-UI (Agent–User Interaction protocol) runs of agent methods and workflows' },
        { name: 'mcp', description: 'MCP (Model Context Protocol): the agents and workflows as tools' }
      ],
      components: {
        securitySchemes: {
          // Alternatives (one or the other, never both): operations list them as separate requirements.
          bearerAuth: {
            type: 'http',
            scheme: 'bearer',
            bearerFormat: 'JWT',
            description:
              'Token from POST /api/auth/login, or a Supabase access token. Send either this or an API key, not both.'
          },
          apiKey: {
            type: 'apiKey',
            in: 'header',
            name: 'x-api-key',
            description: 'API key (amk_…). Send either this or a bearer token, not both.'
          }
        }
      }
    },
    transform: publicSecurity,
    transformObject: polishDocument,
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`)
    }
  })

  await app.register(swaggerUi, {
    routePrefix: '/docs',
    staticCSP: true,
    // Swagger UI sets inline styles (blocked by the stock `style-src 'self' https:`), and the docs are often
    // opened over plain HTTP inside a cluster, where upgrade-insecure-requests would break every asset.
    transformStaticCSP: (header) => header
      .replace(/style-src [^;]*;/, "style-src 'self' 'unsafe-inline';")
      .replace(/\s*upgrade-insecure-requests;?/, ''),
    uiConfig: { docExpansion: 'list', deepLinking: true, displayOperationId: true }
  })

  app.get('/openapi.json', { schema: { hide: true }, config: { public: true } }, async () => app.swagger())
}, { name: 'swagger', dependencies: ['config'] })

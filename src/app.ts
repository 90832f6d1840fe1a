// The application, as a plugin. Registers every plugin, then the routes, explicitly and in dependency
// order. server.ts (and test/helper.ts) create the Fastify instance with serverOptions() and register it.
import fp from 'fastify-plugin'
import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import {
  LogController,
  type FastifyHttpOptions,
  type FastifyInstance,
  type FastifyServerOptions,
  type RawServerDefault
} from 'fastify'
import type { Redis } from 'ioredis'
import { trustProxy, type Config } from './config.js'
import type { Database } from './store/database.js'
import { registerSchemas } from './schemas/index.js'
import { buildSerializer, buildValidator } from './validation.js'
import configPlugin from './plugins/config.js'
import errorHandler, { clientErrorHandler, frameworkErrors } from './plugins/error-handler.js'
import inputGuard from './plugins/input-guard.js'
import security from './plugins/security.js'
import health from './plugins/health.js'
import redis from './plugins/redis.js'
import store from './plugins/store.js'
import metrics from './plugins/metrics.js'
import auth from './plugins/auth.js'
import rateLimit from './plugins/rate-limit.js'
import llm from './plugins/llm.js'
import usageLedger from './plugins/usage-ledger.js'
import agents from './plugins/agents.js'
import tracing from './plugins/tracing.js'
import agentStats from './plugins/agent-stats.js'
import streams from './plugins/streams.js'
import budgets from './plugins/budgets.js'
import coordinator from './plugins/coordinator.js'
import swagger from './plugins/swagger.js'
import serviceRoutes from './routes/service.js'
import healthRoutes from './routes/health.js'
import metricsRoutes from './routes/metrics.js'
import authRoutes from './routes/auth.js'
import usageRoutes from './routes/usage.js'
import agentRoutes from './routes/agents.js'
import agentManagementRoutes from './routes/agent-management.js'
import streamRoutes from './routes/stream.js'
import coordinatorRoutes from './routes/coordinator.js'
import mcpRoutes from './routes/mcp.js'
import agUiRoutes from './routes/ag-ui.js'
import type { LlmProvider } from './llm/types.js'

export const VERSION: string = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version

declare module 'fastify' {
  interface FastifyInstance {
    /** What is in use, for the banner and GET /api; plugins fill in their part. */
    features: { database: string, redis: string, llmProvider: string, [key: string]: string }
    /** Extra lines for the startup banner (e.g. a generated development key, shown once). */
    notices: string[]
  }
}

/** Dependencies a caller (tests, benchmarks) may hand in instead of letting the app open its own. */
export interface AppOptions {
  config: Config
  db?: Database
  redis?: Redis | null
  /** Replaces the configured LLM provider (tests, benchmarks). */
  llmProvider?: LlmProvider
}

const REQUEST_ID = /^[\w.:-]{1,128}$/

/** Fastify server options shared by the real server and the tests. */
export function serverOptions (
  config: Config,
  logger: FastifyServerOptions['logger'] = loggerOptions(config)
): FastifyHttpOptions<RawServerDefault> {
  return {
    logger,
    bodyLimit: config.BODY_LIMIT,
    schemaController: { compilersFactory: { buildValidator: buildValidator as never, buildSerializer } },
    // A hop count is valid at runtime though Fastify's types omit it.
    trustProxy: trustProxy(config.TRUST_PROXY) as FastifyServerOptions['trustProxy'],
    requestIdHeader: false,
    // Fastify's two lines per request are off: the error handler logs one (plugins/error-handler.ts).
    logController: new LogController({ requestIdLogLabel: 'requestId', disableRequestLogging: true }),
    // Echo a caller's x-request-id when it is sane, else generate one.
    genReqId: req => {
      const sent = req.headers['x-request-id']
      return typeof sent === 'string' && REQUEST_ID.test(sent) ? sent : randomUUID()
    },
    // Requests arriving while closing get AMK_SHUTTING_DOWN in the error shape (plugins/health.ts).
    return503OnClosing: false,
    // PGlite's cold start plus migrations can take well over Fastify's 10 s default on a loaded 2-core box.
    pluginTimeout: 120_000,
    forceCloseConnections: 'idle',
    // Receiving a request (headers, body) is bounded so slow uploads cannot hold connections; Node checks
    // every second. A response is not: SSE streams stay open for minutes, so there is no socket idle timeout.
    requestTimeout: config.REQUEST_TIMEOUT_MS,
    http: {
      headersTimeout: Math.min(config.HEADERS_TIMEOUT_MS, config.REQUEST_TIMEOUT_MS),
      requestTimeout: config.REQUEST_TIMEOUT_MS,
      connectionsCheckingInterval: 1000,
      // Node would answer an HTTP/1.1 request without Host with a bare 400; the error handler answers it.
      requireHostHeader: false
    },
    keepAliveTimeout: config.KEEP_ALIVE_TIMEOUT_MS,
    connectionTimeout: 0,
    frameworkErrors,
    clientErrorHandler,
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 200 }
  }
}

export function loggerOptions (config: Config): FastifyServerOptions['logger'] {
  return {
    level: config.LOG_LEVEL,
    redact: {
      paths: [
        'req.headers.authorization',
        'req.headers["x-api-key"]',
        'req.headers.cookie',
        'password',
        '*.password',
        'token',
        '*.token',
        'key',
        '*.apiKey'
      ],
      censor: '[REDACTED]'
    },
    serializers: {
      // Query strings may carry one-time stream tickets: log the path only.
      req: (req: { method: string; url: string; ip?: string; id?: string }) => ({
        method: req.method,
        url: req.url.split('?')[0],
        ip: req.ip
      })
    }
  }
}

async function application (app: FastifyInstance<RawServerDefault>, opts: AppOptions) {
  app.decorate('features', { database: '', redis: '', llmProvider: 'none' })
  const notices: string[] = []
  app.decorate('notices', notices)
  if (opts.config.MAX_CONNECTIONS > 0) app.server.maxConnections = opts.config.MAX_CONNECTIONS
  registerSchemas(app)

  // Order matters and is read here: each plugin names the ones it depends on.
  await app.register(configPlugin, { config: opts.config })
  await app.register(errorHandler)
  await app.register(inputGuard)
  await app.register(security)
  await app.register(health, { version: VERSION })
  await app.register(redis, { client: opts.redis })
  await app.register(store, { db: opts.db })
  await app.register(metrics)
  await app.register(auth)
  await app.register(rateLimit)
  await app.register(llm, { provider: opts.llmProvider })
  await app.register(usageLedger)
  await app.register(agents)
  await app.register(tracing)
  await app.register(agentStats)
  await app.register(streams)
  await app.register(budgets)
  await app.register(coordinator)
  await app.register(swagger, { version: VERSION })

  app.features.database =
    app.db.kind === 'pglite' ? `embedded PGlite (${app.db.location})` : `PostgreSQL (${app.db.location})`
  app.features.redis = app.redis
    ? 'configured (shared limits, cache and stream log)'
    : 'not configured (in-memory stores)'

  // Each route file declares URLs relative to its prefix.
  await app.register(serviceRoutes, { prefix: '/api', version: VERSION })
  await app.register(healthRoutes, { prefix: '/api/health' })
  await app.register(metricsRoutes, { prefix: '/api/metrics' })
  await app.register(authRoutes, { prefix: '/api/auth' })
  await app.register(usageRoutes, { prefix: '/api/usage' })
  await app.register(agentRoutes, { prefix: '/api/agents' })
  await app.register(agentManagementRoutes, { prefix: '/api/agents' })
  await app.register(streamRoutes, { prefix: '/api/stream' })
  await app.register(coordinatorRoutes, { prefix: '/api/coordinator' })
  await app.register(agUiRoutes, { prefix: '/api/ag-ui' })
  await app.register(mcpRoutes, { version: VERSION })
}

export default fp(application, { name: 'app' })

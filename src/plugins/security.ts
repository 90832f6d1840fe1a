// Security headers (helmet), CORS from ALLOWED_ORIGINS, and response compression that never touches
// text/event-stream.
import fp from 'fastify-plugin'
import type { FastifyError } from 'fastify'
import helmet from 'helmet'
import cors from '@fastify/cors'
import compress from '@fastify/compress'
import { csv } from '../config.js'
import { BadRequestError, CorsOriginError } from '../errors.js'

export default fp(async function security (app) {
  // helmet's middleware, built once: @fastify/helmet builds (and re-parses the CSP of) a new one on every
  // request, which cost ~5% of a cheap request's CPU in bench/status.ts.
  const applyHelmet = helmet({
    // Swagger UI serves its own strict CSP (staticCSP); the API itself only ever returns JSON and SSE.
    contentSecurityPolicy: {
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", 'data:', 'validator.swagger.io'],
        connectSrc: ["'self'"],
        frameAncestors: ["'none'"]
      }
    },
    crossOriginResourcePolicy: { policy: 'same-site' }
  })
  app.addHook('onRequest', (request, reply, done) => {
    applyHelmet(request.raw, reply.raw, (error?: unknown) => done(error as FastifyError | undefined))
  })

  const origins = csv(app.config.ALLOWED_ORIGINS)
  const anyOrigin = origins.includes('*')
  // @fastify/cors answers a malformed preflight with a text/plain 400 and a foreign origin with a bare 204;
  // both are refused here first, in the error shape. (No origins configured: OPTIONS is an unknown route.)
  if (origins.length > 0) {
    app.addHook('onRequest', async (request) => {
      if (request.method !== 'OPTIONS') return
      const origin = request.headers.origin
      if (!origin || !request.headers['access-control-request-method']) {
        throw new BadRequestError('A CORS preflight needs the Origin and Access-Control-Request-Method headers')
      }
      if (!anyOrigin && !origins.includes(origin)) throw new CorsOriginError('This origin may not call the API')
    })
  }
  await app.register(cors, {
    strictPreflight: false,
    origin: anyOrigin ? true : origins.length > 0 ? origins : false,
    credentials: !anyOrigin,
    methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'],
    allowedHeaders: [
      'authorization',
      'content-type',
      'x-api-key',
      'x-request-id',
      'last-event-id',
      'idempotency-key',
      'cache-control',
      'accept',
      // the AI SDK UI message stream's format header, and MCP's protocol version (src/protocols)
      'x-stream-format',
      'mcp-protocol-version'
    ],
    exposedHeaders: [
      'x-request-id',
      'x-cache',
      'retry-after',
      'ratelimit-limit',
      'ratelimit-remaining',
      'ratelimit-reset',
      'ratelimit-policy',
      'x-run-id',
      'idempotent-replayed'
    ],
    maxAge: 600
  })

  await app.register(compress, {
    global: true,
    threshold: 1024,
    encodings: ['br', 'gzip', 'deflate'],
    // The default customTypes already excludes text/event-stream; this keeps it explicit.
    customTypes: /^text\/(?!event-stream)|(?:\+|\/)json(?:;|$)/
  })
}, { name: 'security', dependencies: ['config'] })

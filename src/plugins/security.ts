// Security headers (helmet's, precomputed), CORS from ALLOWED_ORIGINS, and response compression that never touches
// text/event-stream.
import fp from 'fastify-plugin'
import helmet from 'helmet'
import cors from '@fastify/cors'
import compress from '@fastify/compress'
import { csv } from '../config.js'
import { BadRequestError, CorsOriginError } from '../errors.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route answers with Server-Sent Events (openSse): its security headers go on the reply. */
    sse?: boolean
  }
}

/** Helmet's options: the API only ever returns JSON and SSE (Swagger UI serves its own strict CSP). */
export const HELMET_OPTIONS: Parameters<typeof helmet>[0] = {
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
}

/**
 * The headers helmet sets, in its order, computed once by running its middleware against a recording
 * response. They depend on no request (no nonce, no per-request directive), so every response gets the same
 * bytes as from helmet itself, without its twelve-middleware chain per request (issue 16).
 */
export function helmetHeaders (options = HELMET_OPTIONS): Array<[string, string]> {
  const headers = new Map<string, string>()
  const recorder = {
    setHeader (name: string, value: string | number | readonly string[]) { headers.set(name, String(value)) },
    removeHeader (name: string) { headers.delete(name) },
    getHeader (name: string) { return headers.get(name) }
  }
  let failure: unknown
  helmet(options)(
    { headers: {}, method: 'GET', url: '/' } as never,
    recorder as never,
    (error?: unknown) => { failure = error }
  )
  if (failure) throw failure instanceof Error ? failure : new Error(String(failure))
  return [...headers]
}

export default fp(async function security (app) {
  const securityHeaders = helmetHeaders()
  const securityHeaderObject = Object.fromEntries(securityHeaders)
  app.addHook('onRequest', (request, reply, done) => {
    if (request.routeOptions.config.sse) {
      // On the reply, where openSse (src/routes/toolkit.ts) takes them for writeHead: raw.setHeader builds
      // node's per-response header table, which an open stream keeps for its life (~1.3 KB; issue 16).
      // The names go out lower-cased, as they did when writeHead merged the stream's headers into that table.
      reply.headers(securityHeaderObject)
    } else {
      const raw = reply.raw
      for (let i = 0; i < securityHeaders.length; i++) raw.setHeader(securityHeaders[i][0], securityHeaders[i][1])
    }
    done()
  })

  const origins = csv(app.config.ALLOWED_ORIGINS)
  const anyOrigin = origins.includes('*')
  // No origins configured: no CORS at all, and OPTIONS is an unknown route (404), as @fastify/cors with
  // `origin: false` answered it, without its hook copying its options on every request (issue 16).
  if (origins.length > 0) {
    // @fastify/cors answers a malformed preflight with a text/plain 400 and a foreign origin with a bare 204;
    // both are refused here first, in the error shape.
    app.addHook('onRequest', async (request) => {
      if (request.method !== 'OPTIONS') return
      const origin = request.headers.origin
      if (!origin || !request.headers['access-control-request-method']) {
        throw new BadRequestError('A CORS preflight needs the Origin and Access-Control-Request-Method headers')
      }
      if (!anyOrigin && !origins.includes(origin)) throw new CorsOriginError('This origin may not call the API')
    })
    await app.register(cors, {
      strictPreflight: false,
      origin: anyOrigin ? true : origins,
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
  }

  await app.register(compress, {
    global: true,
    threshold: 1024,
    encodings: ['br', 'gzip', 'deflate'],
    // The default customTypes already excludes text/event-stream; this keeps it explicit.
    customTypes: /^text\/(?!event-stream)|(?:\+|\/)json(?:;|$)/
  })
}, { name: 'security', dependencies: ['config'] })

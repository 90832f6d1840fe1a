// One error shape everywhere: { statusCode, code, error, message, requestId, details? }.
// Shapes thrown errors, library errors and validation errors; internal errors are masked by toPublicError;
// answers unknown routes (404, or 405 with Allow when the path exists for other methods); documents the error
// responses of every route. Errors raised before routing get the same shape: the router's (frameworkErrors:
// bad URL, 414), Node's own on the raw socket (clientErrorHandler: 408 slow request, 431 headers too large,
// 400 malformed HTTP), and the answers Node would otherwise write itself: 417 for an Expect other than
// 100-continue, CONNECT (405), and HTTP/1.1 without Host (400; Node's own check is off in serverOptions).
import fp from 'fastify-plugin'
import { randomUUID } from 'node:crypto'
import { ServerResponse, STATUS_CODES } from 'node:http'
import type { Duplex } from 'node:stream'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import {
  BadRequestError,
  MethodNotAllowedError,
  RouteNotFoundError,
  ShuttingDownError,
  toPublicError,
  withDetails,
  type DetailedError
} from '../errors.js'
import { ErrorResponseSchema, ref, type ErrorResponse } from '../schemas/common.js'
import { MAX_VALIDATION_DETAILS } from '../validation.js'
import { withLegacyHint } from '../legacy-fields.js'

interface FieldProblem { field: string, message: string }

type ValidationIssue = NonNullable<FastifyError['validation']>[number]

/** Field names come from the client: long keys are cut so an error stays small. */
const clip = (part: string) => part.length > 40 ? `${part.slice(0, 40)}…` : part
/** Fields named in a message; the rest are counted. */
const FIELDS_IN_MESSAGE = 5

function fieldOf (issue: ValidationIssue, context: string | undefined): string {
  const params = issue.params
  const path = issue.instancePath.split('/').filter(Boolean)
  if (typeof params.missingProperty === 'string') path.push(params.missingProperty)
  if (typeof params.additionalProperty === 'string') path.push(params.additionalProperty)
  return [context === 'querystring' ? 'query' : context ?? '', ...path].filter(Boolean).map(clip).join('.')
}

/**
 * Per-field problems, one entry per field (ajv reports each union branch; keep the first useful one),
 * at most MAX_VALIDATION_DETAILS (the validators stop collecting there too).
 */
function validationDetails (error: FastifyError): FieldProblem[] {
  const byField = new Map<string, FieldProblem>()
  for (const issue of (error.validation ?? []).slice(0, MAX_VALIDATION_DETAILS)) {
    const field = fieldOf(issue, error.validationContext)
    const params = issue.params
    let message = issue.message ?? 'is invalid'
    if (params.additionalProperty) message = 'is not allowed'
    if (params.missingProperty) message = 'is required'
    message = withLegacyHint(field, issue.keyword, message)
    if (!byField.has(field)) byField.set(field, { field, message })
  }
  return [...byField.values()]
}

/** Messages of library errors that would otherwise echo (possibly huge) client input. */
const FIXED_MESSAGES: Record<string, string> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'Request body is larger than the allowed limit',
  FST_ERR_BAD_URL: 'The URL is not valid (bad percent-encoding)',
  FST_ERR_MAX_PARAM_LENGTH: 'A path parameter is longer than allowed'
}

function shape (error: FastifyError & Partial<DetailedError>, request: FastifyRequest): ErrorResponse {
  let { statusCode, code, message, details } = toPublicError(error)
  if (error.validation) {
    statusCode = 400
    code = 'AMK_VALIDATION'
    const problems = validationDetails(error)
    const more =
      problems.length > FIELDS_IN_MESSAGE ? ` (and ${problems.length - FIELDS_IN_MESSAGE} more in details)` : ''
    details = problems
    message = `Request validation failed: ${problems
      .slice(0, FIELDS_IN_MESSAGE)
      .map(d => `${d.field} ${d.message}`)
      .join('; ')}${more}`
  } else if (FIXED_MESSAGES[error.code]) {
    message = FIXED_MESSAGES[error.code]
  } else if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    message = `Unsupported Content-Type: ${clip(request.headers['content-type'] ?? 'none')}`
  }
  const body: ErrorResponse = {
    statusCode,
    code,
    error: STATUS_CODES[statusCode] ?? 'Error',
    message,
    requestId: request.id
  }
  if (details !== undefined) body.details = details
  return body
}

/** The error code a request was answered with, for its one log line (onResponse). */
const answeredWith = new WeakMap<FastifyRequest, string>()

function send (error: FastifyError & Partial<DetailedError>, request: FastifyRequest, reply: FastifyReply) {
  const body = shape(error, request)
  // A 5xx also logs its cause; anything else is told by the request's one log line.
  if (body.statusCode >= 500) request.log.error({ err: error }, 'request failed')
  answeredWith.set(request, body.code)
  if (error.headers) reply.headers(error.headers)
  return reply
    .code(body.statusCode)
    .header('x-request-id', request.id)
    .type('application/json; charset=utf-8')
    .send(body)
}

/** Fastify's `frameworkErrors` option: the router's errors, raised before any hook runs. */
export function frameworkErrors (error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  send(error, request, reply)
  request.log.info(
    { req: request, res: { statusCode: reply.statusCode }, code: answeredWith.get(request) },
    'request completed'
  )
}

const CLIENT_ERRORS: Record<string, [number, string, string]> = {
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'AMK_REQUEST_TIMEOUT', 'The request was not received in time'],
  HPE_HEADER_OVERFLOW: [431, 'AMK_HEADERS_TOO_LARGE', 'Request headers are larger than allowed']
}

/** An error body for an answer written before Fastify has a request (a fresh request id). */
function bareError (statusCode: number, code: string, message: string): { requestId: string, body: string } {
  const requestId = randomUUID()
  return {
    requestId,
    body: JSON.stringify({ statusCode, code, error: STATUS_CODES[statusCode], message, requestId })
  }
}

/** A whole HTTP/1.1 response in the error shape, for answers written on a raw socket. */
function rawErrorResponse (statusCode: number, code: string, message: string, headers = ''): string {
  const { requestId, body } = bareError(statusCode, code, message)
  return `HTTP/1.1 ${statusCode} ${STATUS_CODES[statusCode]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nx-request-id: ${requestId}\r\n${headers}` +
    `Connection: close\r\n\r\n${body}`
}

/**
 * Fastify's `clientErrorHandler`: Node reports malformed or too slow requests on the socket, before there
 * is a request object. Answers in the error shape (unless a response has begun), then closes the socket.
 */
export function clientErrorHandler (this: FastifyInstance, error: NodeJS.ErrnoException, socket: Duplex) {
  if (error.code === 'ECONNRESET' || socket.destroyed) return
  const [statusCode, code, message] = CLIENT_ERRORS[error.code ?? ''] ?? [
    400,
    'AMK_BAD_REQUEST',
    'Malformed HTTP request'
  ]
  // Node keeps the response being written on the socket (`_httpMessage`); once its headers are out, no answer.
  const inFlight: unknown = Reflect.get(socket, '_httpMessage')
  if (socket.writable && !(inFlight instanceof ServerResponse && inFlight.headersSent)) {
    socket.write(rawErrorResponse(statusCode, code, message))
  }
  this.log.debug({ code: error.code, statusCode }, 'client error')
  socket.destroy()
}

/** A route pattern (`/api/agents/:agent/status`, `/docs/static/*`) as an anchored RegExp over a raw path. */
function patternOf (url: string): RegExp {
  const source = url
    .split(/(:\w+|\*)/)
    .map(part => (part === '*' ? '.*' : part.startsWith(':') ? '[^/]+' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('')
  return new RegExp(`^${source}/?$`)
}

export default fp(async function errorHandler (app) {
  // Node answers these itself, with an empty text body, unless the server listens for them.
  app.server.on('checkExpectation', (_req, res: ServerResponse) => {
    const { requestId, body } = bareError(417, 'AMK_EXPECTATION_FAILED', 'Only "Expect: 100-continue" is supported')
    res.writeHead(417, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      'x-request-id': requestId,
      connection: 'close'
    }).end(body)
  })
  app.server.on('connect', (_req, socket: Duplex) => {
    const allow = 'Allow: GET, HEAD, POST, DELETE\r\n'
    socket.end(rawErrorResponse(405, 'AMK_METHOD_NOT_ALLOWED', 'CONNECT is not supported', allow))
  })

  // Async on purpose: with every global onRequest hook synchronous, a POST with a malformed chunked body and
  // no content type got the 415 before the HTTP parser's 400 (test/plugins/client-errors.test.ts).
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id)
    const raw = request.raw
    if (raw.httpVersionMajor === 1 && raw.httpVersionMinor >= 1 && request.headers.host === undefined) {
      throw new BadRequestError('An HTTP/1.1 request needs a Host header')
    }
    // Once shutdown has begun, new work goes to another replica; probes and /api/status still answer.
    if (
      app.lifecycle.state === 'shutting-down' &&
      !request.url.startsWith('/api/health') &&
      !request.url.startsWith('/api/status')
    ) {
      reply.header('connection', 'close')
      throw withDetails(new ShuttingDownError(), undefined, { 'retry-after': '1' })
    }
  })

  // One log line per request (Fastify's own two are off: disableRequestLogging), with the error code when it
  // failed, so a flood of bad requests costs one short line each. Callback-style: an async hook costs a
  // promise and a microtask per request.
  app.addHook('onResponse', (request, reply, done) => {
    request.log.info(
      {
        req: request,
        res: { statusCode: reply.statusCode },
        responseTime: Math.round(reply.elapsedTime),
        code: answeredWith.get(request)
      },
      'request completed'
    )
    done()
  })

  app.setErrorHandler(async function (
    error: FastifyError & Partial<DetailedError>,
    request: FastifyRequest,
    reply: FastifyReply
  ) {
    return send(error, request, reply)
  })

  // A path that exists for other methods answers 405 with Allow (HEAD where a GET route exposes it; OPTIONS is
  // CORS's). A route that found nothing itself (static files) calls this handler too: its method is allowed, 404.
  const routes: Array<{ method: string, pattern: RegExp }> = []
  app.setNotFoundHandler(async (request) => {
    const path = request.url.split('?')[0]
    const allowed = request.method === 'OPTIONS'
      ? []
      : [...new Set(routes.filter(route => route.pattern.test(path)).map(route => route.method))]
    if (allowed.length > 0 && !allowed.includes(request.method)) {
      const allow = allowed.join(', ')
      throw withDetails(new MethodNotAllowedError(request.method, path), { allowed }, { allow })
    }
    throw new RouteNotFoundError(request.method, path)
  })

  // Every route documents the error shape for 4xx and 5xx unless it declares its own.
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) {
      if (method !== 'OPTIONS') routes.push({ method, pattern: patternOf(route.url) })
    }
    if (!route.schema || route.schema.hide) return
    const declared = route.schema.response
    const response: Record<string, unknown> = typeof declared === 'object' && declared !== null ? { ...declared } : {}
    for (const key of ['4xx', '5xx']) response[key] ??= ref(ErrorResponseSchema)
    route.schema.response = response
  })
}, { name: 'error-handler', dependencies: ['config'] })

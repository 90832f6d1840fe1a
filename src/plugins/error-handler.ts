// One error shape everywhere: { statusCode, code, error, message, requestId, details? }.
// Shapes thrown errors, library errors and validation errors; masks 5xx messages in production;
// answers unknown routes; documents the error responses of every route.
import fp from 'fastify-plugin'
import { STATUS_CODES } from 'node:http'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { codeForStatus, RouteNotFoundError, type DetailedError } from '../errors.js'
import type { ErrorResponse } from '../schemas/common.js'

interface FieldProblem { field: string, message: string }

type ValidationIssue = NonNullable<FastifyError['validation']>[number]

function fieldOf (issue: ValidationIssue, context: string | undefined): string {
  const params = issue.params as Record<string, unknown>
  const path = issue.instancePath.split('/').filter(Boolean)
  if (typeof params.missingProperty === 'string') path.push(params.missingProperty)
  if (typeof params.additionalProperty === 'string') path.push(params.additionalProperty)
  return [context === 'querystring' ? 'query' : context, ...path].filter(Boolean).join('.')
}

/** Per-field problems, one entry per field (ajv reports each union branch; keep the first useful one). */
export function validationDetails (error: FastifyError): FieldProblem[] {
  const byField = new Map<string, FieldProblem>()
  for (const issue of error.validation ?? []) {
    const field = fieldOf(issue, error.validationContext)
    const params = issue.params as Record<string, unknown>
    let message = issue.message ?? 'is invalid'
    if (params.additionalProperty) message = 'is not allowed'
    if (params.missingProperty) message = 'is required'
    if (!byField.has(field)) byField.set(field, { field, message })
  }
  return [...byField.values()]
}

function shape (error: FastifyError & Partial<DetailedError>, request: FastifyRequest, production: boolean): ErrorResponse {
  let statusCode = error.statusCode && error.statusCode >= 400 && error.statusCode < 600 ? error.statusCode : 500
  let code = typeof error.code === 'string' && error.code.startsWith('AMK_') ? error.code : codeForStatus[statusCode] ?? 'AMK_INTERNAL'
  let message = error.message
  let details = error.details
  if (error.validation) {
    statusCode = 400
    code = 'AMK_VALIDATION'
    details = validationDetails(error)
    message = `Request validation failed: ${(details as FieldProblem[]).map(d => `${d.field} ${d.message}`).join('; ')}`
  } else if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    message = 'Request body is larger than the allowed limit'
  } else if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    message = `Unsupported Content-Type: ${request.headers['content-type'] ?? 'none'}`
  } else if (statusCode === 500 && !error.code?.startsWith('AMK_')) {
    code = 'AMK_INTERNAL'
  }
  if (statusCode >= 500 && production && !error.code?.startsWith('AMK_')) {
    message = 'Internal Server Error'
    details = undefined
  }
  const body: ErrorResponse = { statusCode, code, error: STATUS_CODES[statusCode] ?? 'Error', message, requestId: request.id }
  if (details !== undefined) body.details = details
  return body
}

export default fp(async function errorHandler (app) {
  const production = app.config.NODE_ENV === 'production'

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id)
  })

  app.setErrorHandler(async function (error: FastifyError & Partial<DetailedError>, request: FastifyRequest, reply: FastifyReply) {
    const body = shape(error, request, production)
    if (body.statusCode >= 500) request.log.error({ err: error }, 'request failed')
    else request.log.info({ code: body.code, statusCode: body.statusCode }, body.message)
    if (error.headers) reply.headers(error.headers)
    return reply.code(body.statusCode).type('application/json; charset=utf-8').send(body)
  })

  app.setNotFoundHandler(async (request) => {
    throw new RouteNotFoundError(request.method, request.url.split('?')[0])
  })

  // Every route documents the error shape for 4xx and 5xx unless it declares its own.
  app.addHook('onRoute', (route) => {
    if (!route.schema || route.schema.hide) return
    const response = (route.schema.response ?? {}) as Record<string, unknown>
    for (const key of ['4xx', '5xx']) response[key] ??= { $ref: 'ErrorResponse#' }
    route.schema.response = response
  })
}, { name: 'error-handler', dependencies: ['config'] })

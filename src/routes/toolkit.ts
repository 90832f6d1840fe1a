// What route files share, so their copies cannot drift apart: the authenticated caller, the OpenAPI
// security of routes that need a credential, and taking a reply over for Server-Sent Events.
import type { ServerResponse } from 'node:http'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Caller } from '../auth/roles.js'
import { UnauthorizedError } from '../errors.js'
import { SSE_HEADERS } from '../streams/events.js'

/** OpenAPI `security` of a route that takes a bearer token or an API key. */
export const callerSecurity: Array<Record<string, string[]>> = [{ bearerAuth: [] }, { apiKey: [] }]

/**
 * The authenticated caller. On a route with `config.permission` the auth guard has set it before the
 * handler runs; anywhere else (a public route) there may be none, which is a 401.
 */
export function callerOf (request: FastifyRequest): Caller {
  if (request.caller) return request.caller
  throw new UnauthorizedError('Authentication required: send Authorization: Bearer <token> or x-api-key')
}

export type SseHeaders = Record<string, string | string[] | number>

/**
 * Takes the reply over for a Server-Sent-Events response: Fastify sends nothing more, and the caller
 * writes to the raw response, opening it with `headers` — those set on the reply so far (x-request-id,
 * CORS, rate-limit, Vary…) plus SSE_HEADERS, without a Content-Length.
 */
export function openSse (reply: FastifyReply): { res: ServerResponse, headers: SseHeaders } {
  reply.hijack()
  const headers: SseHeaders = {}
  for (const [name, value] of Object.entries({ ...reply.getHeaders(), ...SSE_HEADERS })) {
    if (value !== undefined && name !== 'content-length') headers[name] = value
  }
  return { res: reply.raw, headers }
}

// The catalogue of every error the API returns. One prefix (AMK_), created with @fastify/error;
// handlers throw these and the error handler shapes them (src/plugins/error-handler.ts).
import createError from '@fastify/error'

/** An error carrying optional `details` (per-field validation problems, available names, …). */
export interface DetailedError extends Error {
  code: string
  statusCode: number
  details?: unknown
  headers?: Record<string, string>
}

function define (code: string, statusCode: number, message: string) {
  return createError<string, number>(code, message, statusCode)
}

export const ValidationError = define('AMK_VALIDATION', 400, 'Request validation failed: %s')
export const BadRequestError = define('AMK_BAD_REQUEST', 400, '%s')
export const UnauthorizedError = define('AMK_UNAUTHORIZED', 401, '%s')
export const ForbiddenError = define('AMK_FORBIDDEN', 403, 'Missing permission: %s')
export const CorsOriginError = define('AMK_CORS_ORIGIN_REFUSED', 403, '%s')
export const NotFoundError = define('AMK_NOT_FOUND', 404, '%s')
export const RouteNotFoundError = define('AMK_ROUTE_NOT_FOUND', 404, 'Route %s %s not found')
export const MethodNotAllowedError = define('AMK_METHOD_NOT_ALLOWED', 405, 'Method %s is not allowed on %s')
export const NotAcceptableError = define('AMK_NOT_ACCEPTABLE', 406, '%s')
export const ConflictError = define('AMK_CONFLICT', 409, '%s')
export const GoneError = define('AMK_GONE', 410, '%s')
export const UnprocessableError = define('AMK_UNPROCESSABLE', 422, '%s')
export const RateLimitedError = define('AMK_RATE_LIMITED', 429, '%s')
export const BudgetExceededError = define('AMK_BUDGET_EXCEEDED', 429, '%s')
/** A dollar budget applies but the model has no price (LLM_PRICING can add it): the call could not be counted. */
export const UnpricedModelError = define('AMK_MODEL_UNPRICED', 422, '%s')
export const TooManyStreamsError = define('AMK_TOO_MANY_STREAMS', 429, '%s')
/** The caller went away or cancelled (client disconnect, stream or run cancel); 499 as nginx does. */
export const CancelledError = define('AMK_CANCELLED', 499, '%s')
export const InternalError = define('AMK_INTERNAL', 500, '%s')
export const LlmUnavailableError = define('AMK_LLM_UNAVAILABLE', 502, '%s')
export const LlmInvalidOutputError = define('AMK_LLM_INVALID_OUTPUT', 502, '%s')
export const ServiceUnavailableError = define('AMK_SERVICE_UNAVAILABLE', 503, '%s')
export const ShuttingDownError = define('AMK_SHUTTING_DOWN', 503, 'The server is shutting down')
/** The database cannot be reached (down, frozen, refusing connections, pool exhausted); carries Retry-After. */
export const DatabaseUnavailableError = define('AMK_DATABASE_UNAVAILABLE', 503, '%s')
export const LlmTimeoutError = define('AMK_LLM_TIMEOUT', 504, '%s')

/** Attaches details (and optional response headers such as Retry-After) to an error of this catalogue. */
export function withDetails<E extends Error & { code: string; statusCode: number }> (
  error: E,
  details?: unknown,
  headers?: Record<string, string>
): E & DetailedError {
  const extra: Pick<DetailedError, 'details' | 'headers'> = {}
  if (details !== undefined) extra.details = details
  if (headers) extra.headers = headers
  return Object.assign(error, extra)
}

/** Default code for a status when a library (not this catalogue) raised the error. */
const codeForStatus: Record<number, string> = {
  400: 'AMK_BAD_REQUEST',
  401: 'AMK_UNAUTHORIZED',
  403: 'AMK_FORBIDDEN',
  404: 'AMK_NOT_FOUND',
  405: 'AMK_METHOD_NOT_ALLOWED',
  406: 'AMK_NOT_ACCEPTABLE',
  408: 'AMK_REQUEST_TIMEOUT',
  409: 'AMK_CONFLICT',
  413: 'AMK_PAYLOAD_TOO_LARGE',
  414: 'AMK_URI_TOO_LONG',
  415: 'AMK_UNSUPPORTED_MEDIA_TYPE',
  417: 'AMK_EXPECTATION_FAILED',
  422: 'AMK_UNPROCESSABLE',
  429: 'AMK_RATE_LIMITED',
  431: 'AMK_HEADERS_TOO_LARGE',
  502: 'AMK_BAD_GATEWAY',
  503: 'AMK_SERVICE_UNAVAILABLE',
  504: 'AMK_GATEWAY_TIMEOUT'
}

/** What a client sees of an error: the fields of the error shape that depend on the error itself. */
export interface PublicError { statusCode: number, code: string, message: string, details?: unknown }

/** The message that replaces an internal error's own (a driver message, an address, a stack detail). */
export const INTERNAL_MESSAGE = 'Internal Server Error'

/** The HTTP status an error carries (`statusCode`), if any. */
export function statusCodeOf (err: unknown): number | undefined {
  return typeof err === 'object' && err !== null && 'statusCode' in err && typeof err.statusCode === 'number'
    ? err.statusCode
    : undefined
}

/** The error's code (`AMK_…`, `FST_…`, `ECONNREFUSED`…), if any. */
export function codeOf (err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : undefined
}

/**
 * The message of anything thrown, for logs and health reports (never sent to a client unchecked: see
 * toPublicError).
 */
export function messageOf (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

/** True for errors of this catalogue: their message and details are written for clients. */
export function isCatalogueError (err: unknown): boolean {
  return codeOf(err)?.startsWith('AMK_') ?? false
}

/**
 * The one masking rule, used wherever an error reaches a client (HTTP error responses, stream `error`
 * events, workflow step and run errors, cache-warm results). Catalogue errors pass through with their
 * code, message and details. A library's client error (4xx, e.g. Fastify's own) keeps its message under
 * the code for its status. Anything else is internal: 500 (or the 5xx it carries) with INTERNAL_MESSAGE,
 * in every environment; the cause belongs in the log.
 */
export function toPublicError (err: unknown): PublicError {
  const status = statusCodeOf(err)
  const statusCode = status !== undefined && status >= 400 && status < 600 ? status : 500
  const code = codeOf(err)
  const details =
    typeof err === 'object' && err !== null && 'details' in err && err.details !== undefined
      ? { details: err.details }
      : {}
  if (code?.startsWith('AMK_')) return { statusCode, code, message: messageOf(err), ...details }
  const fallback = codeForStatus[statusCode] ?? 'AMK_INTERNAL'
  if (statusCode < 500) return { statusCode, code: fallback, message: messageOf(err), ...details }
  return { statusCode, code: fallback, message: INTERNAL_MESSAGE }
}

// The catalogue of every error the API returns. One prefix (AMK_), created with @fastify/error;
// handlers throw these and the error handler shapes them (src/plugins/error-handler.ts).
import createError, { type FastifyErrorConstructor } from '@fastify/error'

export type ErrorDetails = unknown

/** An error carrying optional `details` (per-field validation problems, available names, …). */
export interface DetailedError extends Error {
  code: string
  statusCode: number
  details?: ErrorDetails
  headers?: Record<string, string>
}

type Ctor = FastifyErrorConstructor<{ code: string, statusCode: number }>

function define (code: string, statusCode: number, message: string): Ctor {
  return createError(code, message, statusCode) as Ctor
}

export const ValidationError = define('AMK_VALIDATION', 400, 'Request validation failed: %s')
export const BadRequestError = define('AMK_BAD_REQUEST', 400, '%s')
export const UnauthorizedError = define('AMK_UNAUTHORIZED', 401, '%s')
export const ForbiddenError = define('AMK_FORBIDDEN', 403, 'Missing permission: %s')
export const CorsOriginError = define('AMK_CORS_ORIGIN_REFUSED', 403, '%s')
export const NotFoundError = define('AMK_NOT_FOUND', 404, '%s')
export const RouteNotFoundError = define('AMK_ROUTE_NOT_FOUND', 404, 'Route %s %s not found')
export const MethodNotAllowedError = define('AMK_METHOD_NOT_ALLOWED', 405, '%s')
export const NotAcceptableError = define('AMK_NOT_ACCEPTABLE', 406, '%s')
export const ConflictError = define('AMK_CONFLICT', 409, '%s')
export const GoneError = define('AMK_GONE', 410, '%s')
export const PayloadTooLargeError = define('AMK_PAYLOAD_TOO_LARGE', 413, 'Request body is larger than %s bytes')
export const UnsupportedMediaTypeError = define('AMK_UNSUPPORTED_MEDIA_TYPE', 415, 'Unsupported Content-Type: %s')
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

/** Attaches details (and optional response headers such as Retry-After) to an error. */
export function withDetails<E extends Error> (error: E, details?: ErrorDetails, headers?: Record<string, string>): E & DetailedError {
  const detailed = error as E & DetailedError
  if (details !== undefined) detailed.details = details
  if (headers) detailed.headers = headers
  return detailed
}

/** Default code for a status when a library (not this catalogue) raised the error. */
export const codeForStatus: Record<number, string> = {
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
  422: 'AMK_UNPROCESSABLE',
  429: 'AMK_RATE_LIMITED',
  431: 'AMK_HEADERS_TOO_LARGE',
  502: 'AMK_BAD_GATEWAY',
  503: 'AMK_SERVICE_UNAVAILABLE',
  504: 'AMK_GATEWAY_TIMEOUT'
}

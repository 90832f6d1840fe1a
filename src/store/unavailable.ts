// Which database errors mean "the database cannot be reached" (as opposed to a bad query), and the one
// error every route answers with then: 503 AMK_DATABASE_UNAVAILABLE with Retry-After. The driver's
// message (which names internal addresses) stays in the error's cause, for the log only.
import { DatabaseUnavailableError, withDetails, type DetailedError } from '../errors.js'

/** Seconds a client is told to wait before retrying. */
export const RETRY_AFTER_SECONDS = 1

const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH',
  'EHOSTDOWN', 'ENETDOWN', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED'])
// 08xxx connection exceptions; 57P01–57P03 admin/crash shutdown, cannot connect now; 53300 too many
// connections; 57014 query cancelled (our statement_timeout: the server is too slow to serve).
const SQLSTATES = new Set([
  '08000',
  '08001',
  '08003',
  '08004',
  '08006',
  '08007',
  '57P01',
  '57P02',
  '57P03',
  '53300',
  '57014'
])
const MESSAGES =
  /timeout exceeded when trying to connect|Connection terminated|Query read timeout|connection error|Client was closed|Cannot use a pool after calling end/i

/** True for refused, reset, timed-out and closed connections, pool-acquire timeouts and server shutdowns. */
export function isConnectionError (error: unknown, depth = 0): boolean {
  if (!(error instanceof Error) || depth > 3) return false
  if (error instanceof DatabaseUnavailableError) return true
  const code: unknown = Reflect.get(error, 'code')
  if (typeof code === 'string' && (SOCKET_CODES.has(code) || SQLSTATES.has(code))) return true
  if (MESSAGES.test(error.message)) return true
  if (error instanceof AggregateError && error.errors.some(e => isConnectionError(e, depth + 1))) return true
  return isConnectionError(error.cause, depth + 1)
}

/** The 503 answered while the database cannot be reached; `cause` is logged, never sent. */
export function databaseUnavailable (cause?: unknown): DetailedError {
  const error = withDetails(new DatabaseUnavailableError('The database is temporarily unavailable; retry shortly'),
    undefined, { 'retry-after': String(RETRY_AFTER_SECONDS) })
  if (cause !== undefined) error.cause = cause
  return error
}

/** The error to throw for a driver error: connection-class ones become 503, others pass unchanged. */
export function translate (error: unknown): unknown {
  return isConnectionError(error) && !(error instanceof DatabaseUnavailableError) ? databaseUnavailable(error) : error
}

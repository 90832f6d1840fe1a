// Reading and checking a request's credential, without Fastify. Order: the x-api-key header, then an
// Authorization Bearer token — our own HS256 JWT, or a Supabase access token when Supabase is configured
// (chosen by the token's issuer). Credentials in the query string are refused, not ignored.
// Generic SDKs (hey-api's plain-string auth, for one) send one string to every security scheme, so the same
// value arrives as both x-api-key and Bearer. Then the value's form decides: a JWT (three base64url segments)
// is the bearer token, anything else the API key — so a JWT is never looked up, and refused, as a key.
import type { IncomingHttpHeaders } from 'node:http'
import {
  codeOf,
  DatabaseUnavailableError,
  RateLimitedError,
  statusCodeOf,
  UnauthorizedError,
  withDetails
} from '../errors.js'
import type { ApiKeyStore, KeyIdentity } from './api-keys.js'
import type { Attempt, AttemptThrottle } from './attempt-throttle.js'
import { callerFromClaims, unverifiedIssuer } from './jwt.js'
import type { Caller } from './roles.js'
import type { SupabaseVerifier } from './supabase.js'

export type Credential = { type: 'api-key', value: string } | { type: 'bearer', value: string }
export type AuthMethod = 'password' | 'jwt' | 'api_key' | 'supabase'
export type AuthResult = 'success' | 'failure' | 'throttled'

/** Query parameters that would carry a credential. `ticket` (one-time stream tickets) is not one of them. */
const QUERY_CREDENTIAL_PARAMS: ReadonlySet<string> = new Set([
  'token', 'access_token', 'id_token', 'refresh_token', 'jwt', 'bearer', 'authorization',
  'apikey', 'api_key', 'api-key', 'x-api-key'
])

const BEARER = /^Bearer +([A-Za-z0-9._~+/=-]+) *$/i
const JWT_FORM = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/

/** The request's credential, or null when it sent none; throws 401 for a credential in the query string. */
export function extractCredential (headers: IncomingHttpHeaders, query: unknown): Credential | null {
  if (query && typeof query === 'object') {
    for (const name of Object.keys(query)) {
      if (QUERY_CREDENTIAL_PARAMS.has(name.toLowerCase())) {
        throw new UnauthorizedError(
          `Credentials in the query string ("${name}") are not accepted: ` +
            'send the Authorization or x-api-key header (EventSource: use a stream ticket)'
        )
      }
    }
  }
  const apiKey = headers['x-api-key']
  const authorization = headers.authorization
  const bearer = authorization ? BEARER.exec(authorization)?.[1] : undefined
  if (typeof apiKey === 'string' && apiKey !== '') {
    return apiKey === bearer && JWT_FORM.test(bearer)
      ? { type: 'bearer', value: bearer }
      : { type: 'api-key', value: apiKey }
  }
  if (!authorization) return null
  if (!bearer) throw new UnauthorizedError('Malformed Authorization header: expected "Bearer <token>"')
  return { type: 'bearer', value: bearer }
}

export interface CredentialVerifierDeps {
  /** Verifies one of our tokens (signature, alg, iss, aud, exp, nbf); throws when it is not valid. */
  verifyJwt(token: string): unknown
  apiKeys: ApiKeyStore
  supabase: SupabaseVerifier | null
  /** Counts failed API-key lookups per client IP. */
  keyThrottle: AttemptThrottle
  /** Failed API-key lookups allowed per client IP per window (API_KEY_FAILURE_LIMIT). */
  maxKeyFailures: number
  record(method: AuthMethod, result: AuthResult): void
}

/** Where a credential came from: the client IP keys the failed-attempt throttle. */
export interface CredentialContext { ip: string }

const INVALID_KEY = 'Invalid API key'

/** 429 in the error shape, with Retry-After, for an auth throttle (`scope` login or api-key). */
export function throttledError (message: string, scope: string, waitMs: number, details: Record<string, unknown> = {}) {
  const seconds = Math.max(1, Math.ceil(waitMs / 1000))
  return withDetails(
    new RateLimitedError(message),
    { scope, retryAfterSeconds: seconds, ...details },
    { 'retry-after': String(seconds) }
  )
}

/** A store failure (database down) as 503 with Retry-After; errors that already carry a status pass through. */
export function storeUnavailable (err: unknown, what: string): Error {
  if (err instanceof Error && statusCodeOf(err) !== undefined) return err
  return withDetails(new DatabaseUnavailableError(`${what} cannot be checked right now; retry shortly`), undefined, {
    'retry-after': '5'
  })
}

/** Turns a credential into a caller, or throws 401 (429 when the IP is throttled, 503 when a store is down). */
export function createCredentialVerifier (
  deps: CredentialVerifierDeps
): (credential: Credential, context: CredentialContext) => Promise<Caller> {
  const keyCallers = new WeakMap<KeyIdentity, Caller>()

  /**
   * Failed lookups are counted per IP before the database is asked; past the limit an IP gets 429 and no
   * lookup — except for a key this replica has seen valid before. Fresh cache hits skip the throttle.
   */
  async function viaApiKey (key: string, ip: string): Promise<Caller> {
    const counted: { attempt?: Attempt } = {}
    let found
    try {
      found = await deps.apiKeys.authenticate(key, {
        beforeLookup: async known => {
          const attempt = (counted.attempt = await deps.keyThrottle.attempt([
            { key: `api-key:ip:${ip}`, max: deps.maxKeyFailures }
          ]))
          if (attempt.waitMs > 0 && !known) {
            throw throttledError(
              'Too many failed API-key attempts from this address; try again later',
              'api-key',
              attempt.waitMs
            )
          }
        }
      })
    } catch (err) {
      if (statusCodeOf(err) === 429) {
        deps.record('api_key', 'throttled')
        throw err
      }
      await counted.attempt?.release() // the database failed, not the client: count nothing
      throw storeUnavailable(err, 'API keys')
    }
    const caller = keyCaller(found)
    await counted.attempt?.release()
    return caller
  }

  /** The caller of a key's answer (recorded), or 401: one frozen object per identity the key cache gives. */
  function keyCaller (found: KeyIdentity | null): Caller {
    deps.record('api_key', found ? 'success' : 'failure')
    if (!found) throw new UnauthorizedError(INVALID_KEY)
    let caller = keyCallers.get(found)
    if (!caller) {
      const built: Caller = { id: `key:${found.id}`, kind: 'api-key', role: found.role, keyId: found.id }
      if (found.expiresAt !== null) built.expiresAt = found.expiresAt
      caller = Object.freeze(built)
      keyCallers.set(found, caller)
    }
    return caller
  }

  function viaJwt (token: string): Caller {
    let caller: Caller | null = null
    let message = 'Invalid token'
    try {
      caller = callerFromClaims(deps.verifyJwt(token))
    } catch (err) {
      if (codeOf(err) === 'FAST_JWT_EXPIRED') message = 'Token expired'
    }
    deps.record('jwt', caller ? 'success' : 'failure')
    if (!caller) throw new UnauthorizedError(message)
    return caller
  }

  async function viaSupabase (supabase: SupabaseVerifier, token: string): Promise<Caller> {
    try {
      const caller = await supabase.verify(token)
      deps.record('supabase', 'success')
      return caller
    } catch (err) {
      deps.record('supabase', 'failure')
      throw err
    }
  }

  return async (credential, context) => {
    if (credential.type === 'api-key') {
      const cached = deps.apiKeys.cached(credential.value)
      return cached === undefined ? viaApiKey(credential.value, context.ip) : keyCaller(cached)
    }
    // The unverified issuer only picks a verifier: without Supabase there is one, and no need to decode twice.
    if (deps.supabase && unverifiedIssuer(credential.value) === deps.supabase.issuer) {
      return viaSupabase(deps.supabase, credential.value)
    }
    return viaJwt(credential.value)
  }
}

// Supabase Auth access tokens (SUPABASE_URL set). Asymmetric tokens (ES256, RS256, EdDSA) are verified with
// jose against the project's JWKS at `${SUPABASE_URL}/auth/v1/.well-known/jwks.json` (fetched lazily,
// cached, refetched on an unknown kid at most every 30 s); legacy HS256 tokens with SUPABASE_JWT_SECRET.
// Issuer `${SUPABASE_URL}/auth/v1` and audience `authenticated` are required. The role comes from
// app_metadata.role (only the service can write it) — never from user_metadata, which the user can edit.
import {
  createRemoteJWKSet,
  decodeProtectedHeader,
  errors,
  jwtVerify,
  type JWTPayload,
  type JWTVerifyGetKey
} from 'jose'
import { ServiceUnavailableError, UnauthorizedError } from '../errors.js'
import { isRole, type Caller } from './roles.js'

export interface SupabaseOptions {
  url: string
  jwtSecret?: string
  /** JWKS fetch timeout. */
  timeoutMs?: number
}

export interface SupabaseVerifier {
  readonly issuer: string
  readonly jwksUrl: string
  verify(token: string): Promise<Caller>
  /** Fetches the JWKS now and returns how many keys it holds (health check). */
  checkJwks(): Promise<number>
}

const ASYMMETRIC = ['ES256', 'RS256', 'EdDSA']
const AUDIENCE = 'authenticated'

/** True for failures to reach or read the JWKS — our problem (503), not the caller's (401). */
function isJwksUnavailable (err: unknown): boolean {
  if (!(err instanceof errors.JOSEError)) return true
  return err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid || err.constructor === errors.JOSEError
}

function supabaseCaller (payload: JWTPayload): Caller {
  const appMetadata = payload.app_metadata
  const claimed =
    typeof appMetadata === 'object' && appMetadata !== null && 'role' in appMetadata ? appMetadata.role : undefined
  const role = isRole(claimed) ? claimed : 'user'
  return {
    id: `supabase:${payload.sub}`,
    kind: 'supabase',
    role,
    ...(typeof payload.email === 'string' ? { email: payload.email } : {}),
    ...(typeof payload.exp === 'number' ? { expiresAt: payload.exp * 1000 } : {})
  }
}

export function createSupabaseVerifier (options: SupabaseOptions): SupabaseVerifier {
  const base = options.url.replace(/\/+$/, '')
  const issuer = `${base}/auth/v1`
  const jwksUrl = `${issuer}/.well-known/jwks.json`
  const jwks: JWTVerifyGetKey = createRemoteJWKSet(new URL(jwksUrl), { timeoutDuration: options.timeoutMs ?? 3000 })
  const secret = options.jwtSecret ? new TextEncoder().encode(options.jwtSecret) : null
  const claims = { issuer, audience: AUDIENCE, requiredClaims: ['sub', 'exp'] }

  return {
    issuer,
    jwksUrl,
    async verify (token) {
      let alg: string | undefined
      try {
        alg = decodeProtectedHeader(token).alg
      } catch {
        throw new UnauthorizedError('Invalid token')
      }
      try {
        const { payload } = alg === 'HS256' && secret
          ? await jwtVerify(token, secret, { ...claims, algorithms: ['HS256'] })
          : await jwtVerify(token, jwks, { ...claims, algorithms: ASYMMETRIC })
        if (typeof payload.sub !== 'string' || payload.sub === '') throw new UnauthorizedError('Invalid token')
        return supabaseCaller(payload)
      } catch (err) {
        if (err instanceof UnauthorizedError) throw err
        if (err instanceof errors.JWTExpired) throw new UnauthorizedError('Token expired')
        if (isJwksUnavailable(err)) {
          throw new ServiceUnavailableError('Supabase Auth keys are unavailable; try again shortly')
        }
        throw new UnauthorizedError('Invalid token')
      }
    },
    async checkJwks () {
      const response = await fetch(jwksUrl, { signal: AbortSignal.timeout(options.timeoutMs ?? 3000) })
      if (!response.ok) throw new Error(`JWKS answered ${response.status}`)
      const body: unknown = await response.json()
      const keys = typeof body === 'object' && body !== null && 'keys' in body ? body.keys : undefined
      if (!Array.isArray(keys)) throw new Error('JWKS has no keys array')
      return keys.length
    }
  }
}

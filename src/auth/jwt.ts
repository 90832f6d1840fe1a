// Helpers around the HS256 tokens this service issues (signing and verification are @fastify/jwt's, see
// src/plugins/auth.ts): token lifetime parsing, claims → caller, and an unverified peek at `iss` used only
// to pick which verifier (ours or Supabase's) checks a bearer token.
import { randomBytes } from 'node:crypto'
import { isRole, type Caller, type Role } from './roles.js'

/** Claims we put in a token, besides iss, aud, iat and exp. */
export interface TokenClaims {
  sub: string
  email: string
  role: Role
}

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 }

/** JWT_EXPIRES_IN (`900`, `15m`, `1h`, `7d`; a bare number is seconds) in seconds. */
export function parseDuration (value: string): number {
  const match = /^(\d+)([smhd]?)$/.exec(value.trim())
  if (!match) throw new Error(`invalid duration: ${value}`)
  const seconds = Number(match[1]) * UNIT_SECONDS[match[2] || 's']
  if (seconds <= 0) throw new Error(`duration must be positive: ${value}`)
  return seconds
}

/** A per-process signing secret for development when JWT_SECRET is unset (tokens die with the process). */
export function generateDevSecret (): string {
  return randomBytes(48).toString('base64url')
}

/** The caller a verified token stands for; null when the claims are not ours (bad sub or role). */
export function callerFromClaims (payload: unknown): Caller | null {
  const claims = payload as Partial<TokenClaims & { exp: number }> | null
  if (!claims || typeof claims.sub !== 'string' || claims.sub === '' || !isRole(claims.role)) return null
  return {
    id: `user:${claims.sub}`,
    kind: 'user',
    role: claims.role,
    ...(typeof claims.email === 'string' ? { email: claims.email } : {}),
    ...(typeof claims.exp === 'number' ? { expiresAt: claims.exp * 1000 } : {})
  }
}

/** The `iss` claim of a compact JWT, read WITHOUT verification; null when the token is not a readable JWT. */
export function unverifiedIssuer (token: string): string | null {
  const parts = token.split('.')
  if (parts.length !== 3) return null
  try {
    const payload = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'))
    return typeof payload?.iss === 'string' ? payload.iss : null
  } catch {
    return null
  }
}

// Login attempts, limited per (email, client IP) first — so a stranger's failures lock only that email from
// the stranger's own address — then per email alone at a much higher threshold (a guessing campaign from
// many addresses) and per IP alone (one address spraying many emails). Counting is the attempt throttle's:
// atomic before the password is checked, refused attempts count nothing, a success takes its count back,
// shared through Redis while its breaker is closed. Emails are hashed before they become keys.
import { createHash } from 'node:crypto'
import type { Redis } from 'ioredis'
import { createAttemptThrottle, type Attempt } from './attempt-throttle.js'

export interface LoginThrottleOptions {
  /** Failed attempts allowed per (email, IP) per window. */
  maxPerEmailAndIp: number
  /** Failed attempts allowed per email, from all addresses together. */
  maxPerEmail: number
  /** Failed attempts allowed per client IP, over all emails. */
  maxPerIp: number
  windowMs: number
  /** The Redis client (null → memory); its circuit breaker decides when Redis is used. */
  redis: () => Redis | null
  keyPrefix: string
}

export interface LoginSubjects { email: string, ip: string }

/** Which limit refused a login: the email from this address, the email from everywhere, or this address. */
export type LoginLimit = 'email-ip' | 'email' | 'ip'

export interface LoginAttempt extends Attempt {
  /** The limit that refused the attempt (undefined when it may go ahead). */
  limit?: LoginLimit
}

export interface LoginThrottle {
  /**
   * Counts an attempt unless a limit refuses it; release() it when the login succeeds or fails through no
   * fault of the client.
   */
  attempt(subjects: LoginSubjects): Promise<LoginAttempt>
}

const LIMITS: LoginLimit[] = ['email-ip', 'email', 'ip']

export function createLoginThrottle (options: LoginThrottleOptions): LoginThrottle {
  const throttle = createAttemptThrottle({ ...options, component: 'login throttle' })
  return {
    async attempt ({ email, ip }) {
      const hashed = createHash('sha256').update(email.trim().toLowerCase()).digest('hex').slice(0, 32)
      const attempt = await throttle.attempt([
        { key: `login:email-ip:${hashed}:${ip}`, max: options.maxPerEmailAndIp },
        { key: `login:email:${hashed}`, max: options.maxPerEmail },
        { key: `login:ip:${ip}`, max: options.maxPerIp }
      ])
      return attempt.refusedBy >= 0 ? { ...attempt, limit: LIMITS[attempt.refusedBy] } : attempt
    }
  }
}

// Per-route policy, declared in route config and applied by plugins in onRoute (DESIGN §3):
//   config: { permission: 'agent:execute', rateLimits: [{ scope: 'travel', max: 60 }, …] }
// The auth plugin enforces `public` / `permission` / `metricsToken`; the rate-limit plugin enforces `rateLimits`.
import type { Permission } from './auth/roles.js'

/** One limit: at most `max` requests per caller per `timeWindowMs` (default one minute), counted under `scope`. */
export interface RateLimitRule {
  /**
   * Name reported in the 429 body and the metric label: 'global', 'travel', 'travel.searchFlights', 'admin',
   * 'login'…
   */
  scope: string
  max: number
  timeWindowMs?: number
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** No credential needed. */
    public?: boolean
    /** Permission the caller needs. */
    permission?: Permission
    /** The METRICS_TOKEN bearer may call this route. */
    metricsToken?: boolean
    /** Limits applied in addition to the global per-caller limit. */
    rateLimits?: RateLimitRule[]
  }
}

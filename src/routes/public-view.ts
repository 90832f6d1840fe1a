// What anonymous callers of the public service routes (GET /api, GET /api/health) are shown: which kind
// of component is in use and how it is, never an address, host, port, path or a driver's message (which
// often carries them). Callers with agent:stats, or the METRICS_TOKEN bearer, see the full report.
// A component's message reaches anonymous callers only when it has one of the shapes below (text this
// service composes from nothing configurable) and carries nothing address-like; otherwise its kind and
// status stand in for it. A shape that changes just falls back to the kind: the safe direction.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { hasPermission } from '../auth/roles.js'
import type { LlmProvider } from '../llm/types.js'
import type { ComponentHealth, HealthStatus } from '../schemas/common.js'

const SAFE_MESSAGES: Record<string, RegExp[]> = {
  database: [/^(pglite|postgres) reachable$/],
  redis: [/^ping \d+ ms$/, /^not configured: in-memory stores in use$/],
  llm: [
    /^offline provider: deterministic local output, no model is called$/,
    /^gemini configured \([\w.-]+ \/ [\w.-]+\); no request is made by this check$/,
    /^\d+ of the last \d+ LLM calls failed$/
  ],
  agents: [/^[a-z]+ (healthy|degraded|unhealthy)(, [a-z]+ (healthy|degraded|unhealthy))*$/],
  rateLimit: [
    /^in-memory limiter \(REDIS_URL unset\): limits are per process$/,
    /^Redis store: limits and budgets shared by every replica$/
  ],
  supabase: [/^JWKS has \d+ key\(s\)$/]
}
/** Components whose details are figures and names this service computes (agent verdicts, model tiers). */
const SAFE_DETAILS = new Set(['agents', 'llm'])
/** URLs, IPv4/IPv6 addresses, host:port and absolute paths: never shown to anonymous callers. */
const ADDRESS_LIKE =
  /[a-z][\w+.-]*:\/\/|\b\d{1,3}(\.\d{1,3}){3}\b|\[[0-9a-f:]*:[0-9a-f:]*\]|[\w.-]+:\d{2,5}\b|(^|\s)\/\w/i

/**
 * True for callers who may see addresses and driver messages; no or a bad credential is anonymous. The
 * reply varies with the credential, so shared caches must not serve one caller's view to another.
 */
export async function seesDetails (
  app: FastifyInstance,
  request: FastifyRequest,
  reply: FastifyReply
): Promise<boolean> {
  reply.header('vary', 'authorization, x-api-key')
  const caller = await app.authenticate(request).catch(() => null)
  const detailed = caller !== null && (caller.kind === 'metrics-token' || hasPermission(caller.role, 'agent:stats'))
  if (detailed) reply.header('cache-control', 'private, no-store')
  return detailed
}

export function providerKind (name: LlmProvider['name']): string {
  return name === 'openai' ? 'openai-compatible' : name
}

/**
 * The provider description for anonymous callers (`offline (no GEMINI_API_KEY)`, `gemini (…)`, `openai-compatible`).
 */
export function publicProvider (app: FastifyInstance): string {
  const described = app.features.llmProvider ?? ''
  const safe = /^(offline|gemini) \([\w./ =-]+\)$/.test(described) && !ADDRESS_LIKE.test(described)
  return safe ? described : providerKind(app.llm.provider.name)
}

function kindOf (app: FastifyInstance, name: string, status: HealthStatus): string {
  switch (name) {
    case 'database': return `${app.db.kind === 'postgres' ? 'PostgreSQL' : 'PGlite'} ${status}`
    case 'redis': return `Redis ${status}`
    case 'llm': return `${providerKind(app.llm.provider.name)} provider ${status}`
    case 'rateLimit': return status === 'healthy' ? 'Redis store' : 'Redis unavailable: per-process in-memory limits'
    case 'supabase': return `Supabase Auth ${status}`
    case 'usage': return `usage ledger ${status}`
    default: return status
  }
}

function shown (value: unknown): boolean {
  if (typeof value === 'string') return !ADDRESS_LIKE.test(value)
  if (typeof value !== 'object' || value === null) return true
  return Object.values(value).every(shown)
}

/** The health report's components as an anonymous caller sees them. */
export function publicComponents (
  app: FastifyInstance,
  components: Record<string, ComponentHealth>
): Record<string, ComponentHealth> {
  const view: Record<string, ComponentHealth> = {}
  for (const [name, component] of Object.entries(components)) {
    const { status, latencyMs, message, details } = component
    const shapes = Object.hasOwn(SAFE_MESSAGES, name) ? SAFE_MESSAGES[name] : []
    const safe = shapes.some(shape => shape.test(message)) && shown(message)
    view[name] = {
      status,
      latencyMs,
      message: safe ? message : kindOf(app, name, status),
      ...(details !== undefined && SAFE_DETAILS.has(name) && shown(details) ? { details } : {})
    }
  }
  return view
}

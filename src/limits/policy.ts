// Rate-limit policy, framework-free: which scopes a route is counted under, the configured overrides,
// who is exempt, and how a client is keyed. The rate-limit plugin applies it (src/plugins/rate-limit.ts).
import { BlockList, isIPv6 } from 'node:net'
import type { RateLimitRule } from '../route-policy.js'
import type { Caller, Permission, Role } from '../auth/roles.js'
import { parseOverrides, type Overrides } from '../config/limits.js'

/** Permissions that make a route an admin route (DESIGN §5: admin routes 10/min). */
export const ADMIN_PERMISSIONS: ReadonlySet<Permission> = new Set(['agent:manage', 'cache:manage'])

export interface ScopeLimit { scope: string, max: number, timeWindowMs: number }
export type { Overrides }

export interface LimitSettings {
  globalMax: number
  adminMax: number
  windowMs: number
  premiumMultiplier: number
  exemptRoles: ReadonlySet<string>
  overrides: Overrides
}

export { parseOverrides }

function resolve (rule: RateLimitRule, settings: LimitSettings): ScopeLimit {
  const override = settings.overrides[rule.scope] ?? {}
  return {
    scope: rule.scope,
    max: override.max ?? rule.max,
    timeWindowMs: override.timeWindowMs ?? rule.timeWindowMs ?? settings.windowMs
  }
}

/**
 * The scopes a route is counted under, each counted independently: `global` on every non-public route,
 * `admin` on routes needing agent:manage or cache:manage, then the route's own `rateLimits`.
 */
export function routeScopes (
  route: { public?: boolean; permission?: Permission; rateLimits?: RateLimitRule[] },
  settings: LimitSettings
): ScopeLimit[] {
  const rules: RateLimitRule[] = []
  const declared = route.rateLimits ?? []
  if (!route.public) rules.push({ scope: 'global', max: settings.globalMax })
  if (route.permission && ADMIN_PERMISSIONS.has(route.permission) && !declared.some(r => r.scope === 'admin')) {
    rules.push({ scope: 'admin', max: settings.adminMax })
  }
  for (const rule of declared) {
    if (!rules.some(r => r.scope === rule.scope)) rules.push(rule)
  }
  return rules.map(rule => resolve(rule, settings))
}

/** The per-request maximum: premium callers get `premiumMultiplier` × the limit. */
export function effectiveMax (limit: ScopeLimit, role: Role | undefined, settings: LimitSettings): number {
  return role === 'premium' ? limit.max * settings.premiumMultiplier : limit.max
}

/** RATE_LIMIT_WHITELIST: addresses and CIDR ranges (IPv4 or IPv6) that are never limited. */
export function ipAllowList (entries: string[]): (ip: string) => boolean {
  if (entries.length === 0) return () => false
  const list = new BlockList()
  for (const entry of entries) {
    const [address, bits] = entry.split('/')
    const type = isIPv6(address) ? 'ipv6' : 'ipv4'
    if (bits === undefined) list.addAddress(address, type)
    else list.addSubnet(address, Number(bits), type)
  }
  return (ip) => {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)
    const address = mapped ? mapped[1] : ip
    return list.check(address, isIPv6(address) ? 'ipv6' : 'ipv4')
  }
}

/** The 16-bit groups of an IPv6 address (a zone id dropped, an embedded IPv4 tail read), or null. */
function ipv6Groups (ip: string): number[] | null {
  let text = ip.split('%')[0]
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text)
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number)
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
  }
  const halves = text.split('::')
  if (halves.length > 2) return null
  const group = (g: string) => (/^[0-9a-f]{1,4}$/i.test(g) ? parseInt(g, 16) : NaN)
  const parse = (part: string) => (part ? part.split(':').map(group) : [])
  const left = parse(halves[0])
  const right = halves.length === 2 ? parse(halves[1]) : []
  const missing = 8 - left.length - right.length
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null
  const groups = [...left, ...new Array<number>(missing).fill(0), ...right]
  return groups.every(g => !Number.isNaN(g)) ? groups : null
}

/**
 * How a client without credentials is keyed: an IPv4 address as is; an IPv4-mapped IPv6 address as its IPv4
 * address; any other IPv6 address by its /64 network (one host usually holds a whole /64), in RFC 5952 form.
 * The same keys @fastify/rate-limit's normalizeIP gave, so counters carry over.
 */
export function clientAddress (ip: string): string {
  if (!isIPv6(ip)) return ip.toLowerCase()
  const groups = ipv6Groups(ip)
  if (!groups) return ip.toLowerCase()
  if (groups.slice(0, 5).every(g => g === 0) && groups[5] === 0xffff) {
    return [groups[6] >> 8, groups[6] & 0xff, groups[7] >> 8, groups[7] & 0xff].join('.')
  }
  // The /64 network: the last four groups are zero, so the compressed run is always at the end (or everywhere).
  const network = groups.slice(0, 4)
  while (network.length > 0 && network[network.length - 1] === 0) network.pop()
  return `${network.map(g => g.toString(16)).join(':')}::`
}

/** Admin, internal (RATE_LIMIT_EXEMPT_ROLES) callers and allow-listed IPs are never limited. */
export function isExempt (
  caller: Caller | null,
  ip: string,
  settings: LimitSettings,
  allowed: (ip: string) => boolean
): boolean {
  return (caller !== null && settings.exemptRoles.has(caller.role)) || allowed(ip)
}

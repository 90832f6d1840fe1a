// Rate-limit and budget settings derived from the configuration, and the checks loadConfig runs on the
// variables whose shape a TypeBox string cannot express (JSON, address lists, role lists).
import type { Config } from '../config.js'
import { isRole } from '../auth/roles.js'
import { invalidAllowListEntries, parseOverrides, type LimitSettings } from './policy.js'
import { parseBudgets } from './budgets.js'

const list = (value: unknown): string[] => String(value ?? '').split(',').map(s => s.trim()).filter(Boolean)

export function limitSettings (config: Config): LimitSettings {
  return {
    globalMax: config.RATE_LIMIT_GLOBAL_MAX,
    adminMax: config.RATE_LIMIT_ADMIN_MAX,
    windowMs: config.RATE_LIMIT_WINDOW_MS,
    premiumMultiplier: config.RATE_LIMIT_PREMIUM_MULTIPLIER,
    exemptRoles: new Set(list(config.RATE_LIMIT_EXEMPT_ROLES)),
    overrides: parseOverrides(config.RATE_LIMIT_OVERRIDES)
  }
}

export function allowListEntries (config: Config): string[] {
  return list(config.RATE_LIMIT_WHITELIST)
}

/** Problems with the limit variables, as [name, message] pairs (loadConfig lists them with the rest). */
export function limitConfigProblems (value: Partial<Config>): Array<[string, string]> {
  const problems: Array<[string, string]> = []
  const json = (name: 'RATE_LIMIT_OVERRIDES' | 'BUDGETS', parse: (s: string) => unknown) => {
    if (typeof value[name] !== 'string') return
    try { parse(value[name]) } catch (error) { problems.push([name, `${name}: ${(error as Error).message}`]) }
  }
  json('RATE_LIMIT_OVERRIDES', parseOverrides)
  json('BUDGETS', parseBudgets)
  const badRoles = list(value.RATE_LIMIT_EXEMPT_ROLES).filter(role => !isRole(role))
  if (badRoles.length > 0) problems.push(['RATE_LIMIT_EXEMPT_ROLES', `RATE_LIMIT_EXEMPT_ROLES: unknown roles ${badRoles.join(', ')}`])
  const badAddresses = invalidAllowListEntries(list(value.RATE_LIMIT_WHITELIST))
  if (badAddresses.length > 0) problems.push(['RATE_LIMIT_WHITELIST', `RATE_LIMIT_WHITELIST: not an IP address or CIDR range: ${badAddresses.join(', ')}`])
  return problems
}

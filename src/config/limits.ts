// Parsing and checks of the limit variables whose shape a TypeBox string cannot express: the JSON of
// RATE_LIMIT_OVERRIDES and BUDGETS, role lists and address lists. src/limits/ uses the parsed values.
import { BlockList, isIPv6 } from 'node:net'
import { isRole } from './roles.js'

export interface ScopeOverride { max?: number, timeWindowMs?: number }
export type Overrides = Record<string, ScopeOverride>
export interface DailyBudget { tokens?: number, usd?: number }
export type RoleBudgets = Record<string, DailyBudget>

const isObject = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === 'object' && !Array.isArray(value)
const isCount = (value: unknown, min: number): value is number => Number.isInteger(value) && Number(value) >= min
const optional = <T> (value: unknown, check: (v: unknown) => v is T): boolean => value === undefined || check(value)

/** Splits a comma-separated setting into trimmed, non-empty parts. */
export function csv (value: string | undefined): string[] {
  return (value ?? '').split(',').map(s => s.trim()).filter(Boolean)
}

/** Parses RATE_LIMIT_OVERRIDES: `{"travel.searchFlights": 5, "global": {"max": 200, "timeWindowMs": 60000}}`. */
export function parseOverrides (json: string | undefined): Overrides {
  if (!json) return {}
  const parsed: unknown = JSON.parse(json)
  if (!isObject(parsed)) throw new Error('must be a JSON object of scope → max or {max, timeWindowMs}')
  const result: Overrides = {}
  for (const [scope, value] of Object.entries(parsed)) {
    const entry = typeof value === 'number' ? { max: value } : value
    if (
      !isObject(entry) ||
      !optional(entry.max, v => isCount(v, 0)) ||
      !optional(entry.timeWindowMs, v => isCount(v, 1))
    ) {
      throw new Error(`scope "${scope}": expected a non-negative integer or {max, timeWindowMs}`)
    }
    const override: ScopeOverride = {}
    if (isCount(entry.max, 0)) override.max = entry.max
    if (isCount(entry.timeWindowMs, 1)) override.timeWindowMs = entry.timeWindowMs
    result[scope] = override
  }
  return result
}

/** Parses BUDGETS: `{"user":{"tokens":100000,"usd":1},"premium":{"tokens":1000000}}`. */
export function parseBudgets (json: string | undefined): RoleBudgets {
  if (!json) return {}
  const parsed: unknown = JSON.parse(json)
  if (!isObject(parsed)) throw new Error('must be a JSON object of role → {tokens?, usd?}')
  const result: RoleBudgets = {}
  for (const [role, value] of Object.entries(parsed)) {
    if (!isRole(role)) throw new Error(`unknown role "${role}"`)
    const usdOk = (v: unknown): v is number => typeof v === 'number' && v >= 0
    if (!isObject(value) || !optional(value.tokens, v => isCount(v, 0)) || !optional(value.usd, usdOk)) {
      throw new Error(`role "${role}": expected {tokens?: non-negative integer, usd?: non-negative number}`)
    }
    const budget: DailyBudget = {}
    if (isCount(value.tokens, 0)) budget.tokens = value.tokens
    if (usdOk(value.usd)) budget.usd = value.usd
    result[role] = budget
  }
  return result
}

/** Whether an entry of RATE_LIMIT_WHITELIST is an IPv4/IPv6 address or CIDR range. */
export function isAddressOrRange (entry: string): boolean {
  const [address, bits, extra] = entry.split('/')
  const type = isIPv6(address) ? 'ipv6' : 'ipv4'
  try {
    const list = new BlockList()
    if (extra !== undefined) return false
    if (bits === undefined) list.addAddress(address, type)
    else list.addSubnet(address, Number(bits), type)
    return true
  } catch {
    return false
  }
}

interface LimitVariables {
  RATE_LIMIT_OVERRIDES?: unknown
  BUDGETS?: unknown
  RATE_LIMIT_EXEMPT_ROLES?: unknown
  RATE_LIMIT_WHITELIST?: unknown
}

/** Problems with the limit variables, as [name, message] pairs (loadConfig lists them with the rest). */
export function limitConfigProblems (value: LimitVariables): Array<[string, string]> {
  const problems: Array<[string, string]> = []
  const json = (name: 'RATE_LIMIT_OVERRIDES' | 'BUDGETS', parse: (s: string) => unknown) => {
    const text = value[name]
    if (typeof text !== 'string') return
    try {
      parse(text)
    } catch (error) {
      problems.push([name, `${name}: ${error instanceof Error ? error.message : String(error)}`])
    }
  }
  json('RATE_LIMIT_OVERRIDES', parseOverrides)
  json('BUDGETS', parseBudgets)
  const text = (v: unknown) => typeof v === 'string' ? v : undefined
  const badRoles = csv(text(value.RATE_LIMIT_EXEMPT_ROLES)).filter(role => !isRole(role))
  if (badRoles.length > 0) {
    problems.push(['RATE_LIMIT_EXEMPT_ROLES', `RATE_LIMIT_EXEMPT_ROLES: unknown roles ${badRoles.join(', ')}`])
  }
  const badAddresses = csv(text(value.RATE_LIMIT_WHITELIST)).filter(entry => !isAddressOrRange(entry))
  if (badAddresses.length > 0) {
    problems.push([
      'RATE_LIMIT_WHITELIST',
      `RATE_LIMIT_WHITELIST: not an IP address or CIDR range: ${badAddresses.join(', ')}`
    ])
  }
  return problems
}

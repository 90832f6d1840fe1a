// The role names, kept here because configuration names them (VALID_API_KEYS, BUDGETS,
// RATE_LIMIT_EXEMPT_ROLES). src/auth/roles.ts re-exports them with the permissions each role grants.
export const ROLES = ['user', 'premium', 'admin', 'internal'] as const
export type Role = typeof ROLES[number]

export function isRole (value: unknown): value is Role {
  return typeof value === 'string' && ROLES.some(role => role === value)
}

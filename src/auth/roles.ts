// Roles and the permissions they grant (DESIGN §7), and the caller identity every request resolves to.
import { ROLES, isRole, type Role } from '../config/roles.js'

export { ROLES, isRole, type Role }

export const PERMISSIONS = [
  'agent:read', 'agent:execute', 'agent:priority', 'agent:streaming',
  'agent:manage', 'agent:stats', 'cache:manage'
] as const
export type Permission = typeof PERMISSIONS[number]

const user: Permission[] = ['agent:read', 'agent:execute']
const premium: Permission[] = [...user, 'agent:priority', 'agent:streaming']
const admin: Permission[] = [...premium, 'agent:manage', 'agent:stats', 'cache:manage']

export const ROLE_PERMISSIONS: Record<Role, ReadonlySet<Permission>> = {
  user: new Set(user),
  premium: new Set(premium),
  admin: new Set(admin),
  internal: new Set(PERMISSIONS)
}

export function hasPermission (role: Role, permission: Permission): boolean {
  return ROLE_PERMISSIONS[role].has(permission)
}

/** Who is calling. `id` is stable per credential owner and keys rate limits, budgets and the usage ledger. */
export interface Caller {
  id: string
  kind: 'user' | 'api-key' | 'supabase' | 'metrics-token'
  role: Role
  email?: string
  /** API key id when authenticated by key (budgets per key). */
  keyId?: string
  /**
   * When the credential stops being valid (ms since the epoch): token exp, key expiry. Re-checked on stream tickets.
   */
  expiresAt?: number
}

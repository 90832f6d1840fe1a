// VALID_API_KEYS: `key:role` pairs seeded at start (src/plugins/auth.ts stores them hashed). An entry
// without a role is the Express service's format (`key1,key2`), and the message says so.
import { ROLES, isRole, type Role } from './roles.js'

export interface SeedKey { key: string, role: Role }

const ROLE_LIST = ROLES.join(', ')

/** The problem with one entry, or null when it is a valid `key:role`. Never echoes the key. */
function entryProblem (key: string, role: string | null): string | null {
  if (role === null) return ` has no role: write it as <key>:<role> (role is one of ${ROLE_LIST})`
  if (key.length < 20 || key.length > 256) return ': the key must be 20–256 characters'
  if (!isRole(role)) return `: role must be one of ${ROLE_LIST}`
  return null
}

/** Parses VALID_API_KEYS (`key:role,…`); throws one Error naming every bad entry. */
export function parseSeedKeys (value: string | undefined): SeedKey[] {
  const entries = (value ?? '').split(',').map(s => s.trim()).filter(Boolean)
  const problems: string[] = []
  const keys: SeedKey[] = []
  entries.forEach((entry, i) => {
    const at = entry.lastIndexOf(':')
    const key = at > 0 ? entry.slice(0, at) : entry
    const role = at > 0 ? entry.slice(at + 1) : null
    const problem = entryProblem(key, role)
    if (problem) problems.push(`entry ${i + 1}${problem}`)
    else if (isRole(role)) keys.push({ key, role })
  })
  if (problems.length > 0) throw new Error(`VALID_API_KEYS: ${problems.join('; ')}`)
  return keys
}

// Reading the auth tables' columns (api_keys, users) from untyped driver rows. PGlite and node-postgres
// return timestamptz as Date; strings are accepted too.
import { isRole, type Role } from './roles.js'

/** Milliseconds since the epoch of a timestamp column (NaN when it holds no time). */
export function timeOf (value: unknown): number {
  if (value instanceof Date) return value.getTime()
  return typeof value === 'string' || typeof value === 'number' ? new Date(value).getTime() : NaN
}

/** A timestamp column as an ISO string; null for SQL NULL. */
export function isoOf (value: unknown): string | null {
  return value == null ? null : new Date(timeOf(value)).toISOString()
}

/** A role column. The tables' CHECK constraints keep it one of ROLES; anything else reads as the least privileged. */
export function roleOf (value: unknown): Role {
  return isRole(value) ? value : 'user'
}

// The agent response cache contract and its keys: `<prefix>cache:<agent>:<method>:<sha256 of canonical
// JSON input>`. Implementations: memory (bounded LRU) and Redis (with memory fallback while Redis is down).
import { createHash } from 'node:crypto'

export interface CachedResponse {
  data: unknown
  /** The model that produced the data. */
  model: string
  createdAt: number
}

export interface ResponseCache {
  readonly kind: 'memory' | 'redis'
  get(key: string): Promise<CachedResponse | null>
  set(key: string, value: CachedResponse, ttlSeconds: number): Promise<void>
  /**
   * Deletes keys `namespace + pattern` (glob: * ? [..], see glob.ts); the pattern cannot reach outside the
   * namespace.
   */
  clear(namespace: string, pattern: string): Promise<number>
  size(namespace: string): Promise<number>
  close?(): Promise<void>
}

/** JSON with object keys sorted at every level, so equal inputs hash equally whatever their key order. */
export function canonicalJson (value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null'
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  const entries = Object.entries(value)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`
}

export function cacheNamespace (prefix: string, agent: string): string {
  return `${prefix}cache:${agent}:`
}

export function cacheKey (prefix: string, agent: string, method: string, input: unknown): string {
  const hash = createHash('sha256').update(canonicalJson(input)).digest('hex')
  return `${cacheNamespace(prefix, agent)}${method}:${hash}`
}

/** Escapes glob metacharacters so a literal (the namespace) matches only itself in SCAN MATCH. */
export function escapeGlob (literal: string): string {
  return literal.replace(/[*?[\]\\]/g, '\\$&')
}

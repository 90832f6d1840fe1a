// API keys: `amk_<40 base62 chars>` (≈238 random bits). Only the SHA-256 hash and a short display prefix
// are stored. Lookups are cached briefly per process (revoking on this instance drops the entry at once;
// other replicas notice within the cache TTL); last_used_at is written at most once a minute per key.
import { hash as digest, randomBytes } from 'node:crypto'
import type { Queryable, Row } from '../store/database.js'
import { isRole, type Role } from './roles.js'
import { isoOf, roleOf, timeOf } from './rows.js'
import { parseSeedKeys, type SeedKey } from '../config/seed-keys.js'

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'
const KEY_PREFIX = 'amk_'
const RANDOM_LENGTH = 40
const DISPLAY_LENGTH = KEY_PREFIX.length + 8
const TOUCH_INTERVAL_MS = 60_000
const MAX_CACHED = 10_000
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** A fresh key; rejection sampling keeps every base62 character equally likely. */
export function generateApiKey (): string {
  let out = ''
  while (out.length < RANDOM_LENGTH) {
    for (const byte of randomBytes(64)) {
      if (byte < 248 && out.length < RANDOM_LENGTH) out += BASE62[byte % 62]
    }
  }
  return KEY_PREFIX + out
}

// One-shot: no Hash object per request.
export const hashApiKey = (key: string): string => digest('sha256', key)
const displayPrefix = (key: string): string => key.slice(0, DISPLAY_LENGTH)

export { parseSeedKeys, type SeedKey }

export interface ApiKeyRecord {
  id: string
  name: string
  prefix: string
  role: Role
  source: 'api' | 'env' | 'dev'
  createdBy: string | null
  createdAt: string
  expiresAt: string | null
  revokedAt: string | null
  lastUsedAt: string | null
  /** Daily budgets of this key; null = the role's budget applies. */
  dailyTokenBudget: number | null
  dailyCostBudgetUsd: number | null
}

function toRecord (row: Row): ApiKeyRecord {
  return {
    id: String(row.id),
    name: String(row.name),
    prefix: String(row.prefix),
    role: roleOf(row.role),
    source: row.source === 'env' || row.source === 'dev' ? row.source : 'api',
    createdBy: row.created_by == null ? null : String(row.created_by),
    createdAt: new Date(timeOf(row.created_at)).toISOString(),
    expiresAt: isoOf(row.expires_at),
    revokedAt: isoOf(row.revoked_at),
    lastUsedAt: isoOf(row.last_used_at),
    dailyTokenBudget: row.daily_token_budget == null ? null : Number(row.daily_token_budget),
    dailyCostBudgetUsd: row.daily_cost_budget_usd == null ? null : Number(row.daily_cost_budget_usd)
  }
}

interface AuthenticateOptions { now?: number, beforeLookup?: (known: boolean) => Promise<void> }
/** What a valid key authenticates as. */
export interface KeyIdentity { id: string; role: Role; expiresAt: number | null }
interface CachedKey {
  id: string
  role: Role
  expiresAt: number | null
  revoked: boolean
  cachedAt: number
  touchedAt: number
}

export interface ApiKeyCreate {
  name: string
  role: Role
  expiresAt?: Date | null
  createdBy?: string | null
  source?: ApiKeyRecord['source']
  dailyTokenBudget?: number | null
  dailyCostBudgetUsd?: number | null
}

export class ApiKeyStore {
  private readonly cache = new Map<string, CachedKey>()
  /**
   * One frozen identity per cached answer, so its callers can be one object too (credentials.ts): a request,
   * and an open stream for its whole life, holds the key's caller without a copy of its own.
   */
  private readonly identities = new WeakMap<CachedKey, KeyIdentity>()
  /**
   * Lookups in flight by key hash: a burst of requests with one uncached key makes one lookup (and one
   * throttle count).
   */
  private readonly lookups = new Map<string, Promise<CachedKey | null>>()
  private readonly pending = new Set<Promise<unknown>>()

  constructor (
    private readonly db: Queryable,
    private readonly options: { cacheTtlMs: number; onError?: (err: Error) => void }
  ) {}

  /** Creates a key; the plaintext is returned here once and never stored. */
  async create (input: ApiKeyCreate): Promise<{ key: string; record: ApiKeyRecord }> {
    const key = generateApiKey()
    const [row] = await this.db.query(
      'INSERT INTO api_keys (name, prefix, key_hash, role, source, created_by, expires_at, ' +
      `daily_token_budget, daily_cost_budget_usd)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *`,
      [
        input.name,
        displayPrefix(key),
        hashApiKey(key),
        input.role,
        input.source ?? 'api',
        input.createdBy ?? null,
        input.expiresAt ?? null,
        input.dailyTokenBudget ?? null,
        input.dailyCostBudgetUsd ?? null
      ]
    )
    return { key, record: toRecord(row) }
  }

  async list (limit = 100): Promise<ApiKeyRecord[]> {
    const rows = await this.db.query('SELECT * FROM api_keys ORDER BY created_at DESC, id LIMIT $1', [limit])
    return rows.map(toRecord)
  }

  /** Revokes a key (idempotent: an already revoked key keeps its first revocation time); null when unknown. */
  async revoke (id: string): Promise<ApiKeyRecord | null> {
    const [row] = await this.db.query(
      'UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now()) WHERE id = $1 RETURNING *',
      [id]
    )
    for (const [hash, entry] of this.cache) if (entry.id === id) this.cache.delete(hash)
    return row ? toRecord(row) : null
  }

  /**
   * The key's id, role and expiry, or null for an unknown, revoked or expired key (the caller cannot tell
   * which). `beforeLookup` runs before a database lookup (not on a fresh cache hit) and may throw to refuse
   * it (the failed-attempt throttle); `known`: this replica has seen the key valid before.
   */
  async authenticate (key: string, options: AuthenticateOptions = {}): Promise<KeyIdentity | null> {
    if (key.length < 20 || key.length > 256) return null
    const now = options.now ?? Date.now()
    const hash = hashApiKey(key)
    let entry: CachedKey | null | undefined = this.cache.get(hash)
    if (!entry || now - entry.cachedAt >= this.options.cacheTtlMs) {
      let lookup = this.lookups.get(hash)
      if (!lookup) {
        lookup = this.lookup(hash, entry, now, options).finally(() => this.lookups.delete(hash))
        this.lookups.set(hash, lookup)
      }
      entry = await lookup
      if (!entry) return null
    }
    return this.verdict(entry, now)
  }

  /**
   * What `authenticate` would answer, when this replica's cache holds the key fresh (no database, no throttle,
   * no promise: the request path's usual case); undefined when only `authenticate` can tell.
   */
  cached (key: string, now = Date.now()): KeyIdentity | null | undefined {
    if (key.length < 20 || key.length > 256) return null
    const entry = this.cache.get(hashApiKey(key))
    return entry && now - entry.cachedAt < this.options.cacheTtlMs ? this.verdict(entry, now) : undefined
  }

  private verdict (entry: CachedKey, now: number): KeyIdentity | null {
    if (entry.revoked || (entry.expiresAt !== null && entry.expiresAt <= now) || !isRole(entry.role)) return null
    if (now - entry.touchedAt >= TOUCH_INTERVAL_MS) {
      entry.touchedAt = now
      this.touch(entry.id)
    }
    let identity = this.identities.get(entry)
    if (!identity) {
      identity = Object.freeze({ id: entry.id, role: entry.role, expiresAt: entry.expiresAt })
      this.identities.set(entry, identity)
    }
    return identity
  }

  private async lookup (
    hash: string,
    previous: CachedKey | undefined,
    now: number,
    options: AuthenticateOptions
  ): Promise<CachedKey | null> {
    await options.beforeLookup?.(previous !== undefined && !previous.revoked)
    const [row] = await this.db.query('SELECT id, role, expires_at, revoked_at FROM api_keys WHERE key_hash = $1', [
      hash
    ])
    if (!row) return null
    const entry: CachedKey = {
      id: String(row.id),
      role: roleOf(row.role),
      expiresAt: row.expires_at == null ? null : timeOf(row.expires_at),
      revoked: row.revoked_at != null,
      cachedAt: now,
      touchedAt: previous?.touchedAt ?? 0
    }
    if (this.options.cacheTtlMs > 0) this.remember(hash, entry)
    return entry
  }

  /** True while the key with this id exists and is neither revoked nor expired (read from the database). */
  async isActive (id: string, now = Date.now()): Promise<boolean> {
    if (!UUID.test(id)) return false
    const [row] = await this.db.query('SELECT expires_at, revoked_at FROM api_keys WHERE id = $1', [id])
    return row !== undefined && row.revoked_at == null && (row.expires_at == null || timeOf(row.expires_at) > now)
  }

  /** The daily budgets set on the key with this id (unset ones absent); null when there is no such key. */
  async budgetOf (id: string): Promise<{ tokens?: number; usd?: number } | null> {
    const [row] = await this.db.query<{ daily_token_budget: number | null; daily_cost_budget_usd: number | null }>(
      'SELECT daily_token_budget, daily_cost_budget_usd FROM api_keys WHERE id = $1',
      [id]
    )
    return row ? { tokens: row.daily_token_budget ?? undefined, usd: row.daily_cost_budget_usd ?? undefined } : null
  }

  /**
   * Seeds VALID_API_KEYS idempotently. The environment is the source of truth for `env` keys: a changed role
   * is applied, and env keys no longer listed are revoked. A key revoked through the API stays revoked.
   */
  async seed (keys: SeedKey[]): Promise<void> {
    const hashes = keys.map(k => hashApiKey(k.key))
    for (const [i, { key, role }] of keys.entries()) {
      await this.db.query(
        `INSERT INTO api_keys (name, prefix, key_hash, role, source) VALUES ($1, $2, $3, $4, 'env')
         ON CONFLICT (key_hash) DO UPDATE SET role = EXCLUDED.role WHERE api_keys.source = 'env'`,
        [`VALID_API_KEYS #${i + 1}`, displayPrefix(key), hashes[i], role]
      )
    }
    await this.db.query(
      `UPDATE api_keys SET revoked_at = now() WHERE source = 'env' AND revoked_at IS NULL
       AND NOT (key_hash = ANY($1::text[]))`,
      [hashes]
    )
    this.cache.clear()
  }

  /** A development admin key (earlier development keys are revoked); returns the plaintext once. */
  async createDevKey (): Promise<string> {
    await this.db.query("UPDATE api_keys SET revoked_at = now() WHERE source = 'dev' AND revoked_at IS NULL")
    const { key } = await this.create({ name: 'development admin key', role: 'admin', source: 'dev' })
    return key
  }

  /** Waits for last-used writes in flight (called before the database closes). */
  async flush (): Promise<void> {
    await Promise.allSettled([...this.pending])
  }

  private remember (hash: string, entry: CachedKey): void {
    this.cache.delete(hash)
    const oldest = this.cache.keys().next()
    if (this.cache.size >= MAX_CACHED && !oldest.done) this.cache.delete(oldest.value)
    this.cache.set(hash, entry)
  }

  private touch (id: string): void {
    const write = this.db
      .query(
        `UPDATE api_keys SET last_used_at = now() WHERE id = $1
       AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')`,
        [id]
      )
      .catch((err: Error) => this.options.onError?.(err))
      .finally(() => this.pending.delete(write))
    this.pending.add(write)
  }
}

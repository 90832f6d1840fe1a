// API keys: the key format, create once / list / revoke, expiry, last-used, and revocation seen by
// another replica. Runs on PGlite and on PostgreSQL.
import t from 'tap'
import { ApiKeyStore, generateApiKey, hashApiKey } from '../../src/auth/api-keys.js'
import type { AttemptThrottle } from '../../src/auth/attempt-throttle.js'
import { createCredentialVerifier } from '../../src/auth/credentials.js'
import type { Queryable } from '../../src/store/database.js'
import { build, pglite } from '../support.js'
import { AUTH_ENV, adminToken, apiKeyWithRole, backends, bearer, buildOn } from './support.js'

t.test('generated keys: amk_ + 40 base62 characters, all different', async t => {
  const keys = new Set(Array.from({ length: 200 }, generateApiKey))
  t.equal(keys.size, 200)
  for (const key of keys) t.match(key, /^amk_[0-9A-Za-z]{40}$/)
  t.equal(hashApiKey('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad', 'SHA-256 hex')
})

t.test('the request path\'s cache check answers as a lookup would, and only while the entry is fresh', async t => {
  const now = Date.now()
  const rows = new Map<string, Record<string, unknown>>()
  let lookups = 0
  const db: Queryable = {
    query: async <T>(sql: string, params?: unknown[]) => {
      if (!sql.startsWith('SELECT')) return [] as T[]
      lookups++
      const row = rows.get(String(params?.[0]))
      return (row ? [row] : []) as T[]
    }
  }
  const store = new ApiKeyStore(db, { cacheTtlMs: 1000 })
  const key = generateApiKey()
  rows.set(hashApiKey(key), { id: 'k1', role: 'premium', expires_at: null, revoked_at: null })
  t.equal(store.cached(key, now), undefined, 'never looked up: only authenticate can tell')
  t.same(await store.authenticate(key, { now }), { id: 'k1', role: 'premium', expiresAt: null })
  t.same(store.cached(key, now + 999), { id: 'k1', role: 'premium', expiresAt: null }, 'fresh: the same answer')
  t.equal(store.cached(key, now + 1), store.cached(key, now + 2), 'one identity object per cached answer')
  t.ok(Object.isFrozen(store.cached(key, now + 1)), 'frozen: its callers are shared')
  t.equal(store.cached(key, now + 1000), undefined, 'stale: the database decides again')
  t.equal(store.cached('too-short', now), null, 'never a key')

  const expiring = generateApiKey()
  rows.set(hashApiKey(expiring), { id: 'k2', role: 'user', expires_at: new Date(now + 500), revoked_at: null })
  t.ok(await store.authenticate(expiring, { now }))
  t.equal(store.cached(expiring, now + 500), null, 'expired while cached: refused, without a lookup')
  const revoked = generateApiKey()
  rows.set(hashApiKey(revoked), { id: 'k3', role: 'user', expires_at: null, revoked_at: new Date(now - 1) })
  t.equal(await store.authenticate(revoked, { now }), null)
  t.equal(store.cached(revoked, now + 1), null, 'a revoked key stays refused from the cache')
  t.equal(lookups, 3, 'one lookup per key')
})

t.test("a key's requests share one frozen caller while its cached answer holds; a new answer, a new caller", async t => {
  const row = { id: 'k1', role: 'premium', expires_at: null, revoked_at: null }
  const db: Queryable = { query: async <T>(sql: string) => (sql.startsWith('SELECT') ? [row] : []) as T[] }
  const apiKeys = new ApiKeyStore(db, { cacheTtlMs: 200 })
  const verify = createCredentialVerifier({
    verifyJwt: () => { throw new Error('no JWTs here') },
    apiKeys,
    supabase: null,
    keyThrottle: { attempt: async () => ({ waitMs: 0, release: async () => {} }) } as unknown as AttemptThrottle,
    maxKeyFailures: 10,
    record: () => {}
  })
  const key = generateApiKey()
  const credential = { type: 'api-key' as const, value: key }
  const first = await verify(credential, { ip: '10.0.0.1' })
  const second = await verify(credential, { ip: '10.0.0.2' })
  t.same(first, { id: 'key:k1', kind: 'api-key', role: 'premium', keyId: 'k1' })
  t.equal(second, first, 'the same object: an open stream holds no caller of its own')
  t.ok(Object.isFrozen(first), 'frozen, so no request can change another one\'s caller')
  row.role = 'user'
  await new Promise(resolve => setTimeout(resolve, 250)) // the cached answer goes stale
  const changed = await verify(credential, { ip: '10.0.0.1' })
  t.not(changed, first, 'a new lookup: a new caller')
  t.equal(changed.role, 'user')
})

for (const backend of backends) {
  t.test(`${backend.name}: create, list, use, revoke`, { skip: backend.skip }, async t => {
    const app = await buildOn(t, backend)
    const admin = await adminToken(app)
    const created = await apiKeyWithRole(app, admin, 'premium') as Record<string, unknown> & { key: string, id: string }
    t.match(created, {
      name: 'premium key',
      role: 'premium',
      source: 'api',
      status: 'active',
      expiresAt: null,
      revokedAt: null,
      lastUsedAt: null
    })
    t.match(created.createdBy, /^user:/)
    t.equal(created.prefix, created.key.slice(0, 12))

    const first = await app.inject({ url: '/api/auth/me', headers: { 'x-api-key': created.key } })
    t.same(first.json(), {
      id: `key:${created.id}`,
      kind: 'api-key',
      role: 'premium',
      keyId: created.id,
      permissions: ['agent:read', 'agent:execute', 'agent:priority', 'agent:streaming']
    })
    await app.auth.apiKeys.flush()
    const list = await app.inject({ url: '/api/auth/keys', headers: bearer(admin) })
    t.equal(list.statusCode, 200)
    t.notOk(list.body.includes(created.key), 'the list never shows a key')
    const listed = list.json().keys.find((k: { id: string }) => k.id === created.id)
    t.ok(Date.parse(listed.lastUsedAt), 'last used is recorded')
    t.notOk('key' in listed)
    await app.inject({ url: '/api/auth/me', headers: { 'x-api-key': created.key } })
    await app.auth.apiKeys.flush()
    const [row] = await app.db.query('SELECT last_used_at FROM api_keys WHERE id = $1', [created.id])
    t.equal(new Date(row.last_used_at as string).toISOString(), listed.lastUsedAt, 'written at most once a minute')

    const revoked = await app.inject({ method: 'DELETE', url: `/api/auth/keys/${created.id}`, headers: bearer(admin) })
    t.equal(revoked.statusCode, 200)
    t.equal(revoked.json().status, 'revoked')
    const again = await app.inject({ method: 'DELETE', url: `/api/auth/keys/${created.id}`, headers: bearer(admin) })
    t.equal(again.json().revokedAt, revoked.json().revokedAt, 'revoking twice keeps the first time')
    t.equal(
      (await app.inject({ url: '/api/auth/me', headers: { 'x-api-key': created.key } })).statusCode,
      401,
      'revocation is immediate'
    )
    t.equal(
      (
        await app.inject({
          method: 'DELETE',
          url: '/api/auth/keys/00000000-0000-4000-8000-000000000000',
          headers: bearer(admin)
        })
      ).statusCode,
      404
    )
    t.equal(
      (await app.inject({ method: 'DELETE', url: '/api/auth/keys/not-a-uuid', headers: bearer(admin) })).statusCode,
      400
    )
  })

  t.test(`${backend.name}: expiry`, { skip: backend.skip }, async t => {
    const app = await buildOn(t, backend, { env: { API_KEY_CACHE_TTL_MS: '0' } })
    const admin = await adminToken(app)
    const create = (expiresAt: string) =>
      app.inject({
        method: 'POST',
        url: '/api/auth/keys',
        headers: bearer(admin),
        payload: { name: 'temp', expiresAt }
      })
    t.equal(
      (await create(new Date(Date.now() - 1000).toISOString())).statusCode,
      400,
      'an expiry in the past is refused'
    )
    t.equal((await create('tomorrow')).statusCode, 400)
    const res = await create(new Date(Date.now() + 86_400_000).toISOString())
    t.equal(res.statusCode, 201)
    t.equal(res.json().role, 'user', 'role defaults to user')
    t.equal((await app.inject({ url: '/api/auth/me', headers: { 'x-api-key': res.json().key } })).statusCode, 200)
    await app.db.query("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1", [res.json().id])
    t.equal(
      (await app.inject({ url: '/api/auth/me', headers: { 'x-api-key': res.json().key } })).statusCode,
      401,
      'expired'
    )
  })

  t.test(
    `${backend.name}: another replica sees a revocation within the cache TTL (0 here)`,
    { skip: backend.skip },
    async t => {
      const base = await backend.options()
      const db = base.db === null ? null : await pglite()
      const env = { ...AUTH_ENV, ...base.env, API_KEY_CACHE_TTL_MS: '0' }
      const a = await build(t, { db, env })
      const b = await build(t, { db, env })
      const { key, id } = await apiKeyWithRole(a, await adminToken(a), 'user')
      t.equal((await b.inject({ url: '/api/auth/me', headers: { 'x-api-key': key } })).statusCode, 200)
      await a.inject({ method: 'DELETE', url: `/api/auth/keys/${id}`, headers: bearer(await adminToken(a)) })
      t.equal((await b.inject({ url: '/api/auth/me', headers: { 'x-api-key': key } })).statusCode, 401)
    }
  )
}

// Development conveniences: with no credential configured a random admin API key is generated, stored
// hashed and announced once; without JWT_SECRET login still works with a per-process secret; production
// refuses to start without JWT_SECRET. Runs on PGlite and on PostgreSQL.
import t from 'tap'
import { loadConfig } from '../../src/config.js'
import { hashApiKey } from '../../src/auth/api-keys.js'
import { build, pglite } from '../support.js'
import { ADMIN, JWT_SECRET, backends, bearer, login } from './support.js'

for (const backend of backends) {
  t.test(`${backend.name}: development conveniences`, { skip: backend.skip }, async t => {
    const base = await backend.options()
    const db = base.db === null ? null : await pglite() // one database across the starts
    const start = (env: Record<string, string> = {}) =>
      build(t, { db, env: { ...base.env, NODE_ENV: 'development', ...env } })
    const dev = await start()
    const devNotice = dev.notices.find(n => n.includes('dev key'))
    t.ok(devNotice, 'a development key is announced in the banner notices')
    const key = /(amk_[0-9A-Za-z]{40})/.exec(devNotice!)![1]
    t.equal((await dev.inject({ url: '/api/auth/me', headers: { 'x-api-key': key } })).json().role, 'admin')
    const [row] = await dev.db.query("SELECT * FROM api_keys WHERE source = 'dev' AND revoked_at IS NULL")
    t.equal(row.key_hash, hashApiKey(key))
    t.notOk(JSON.stringify(row).includes(key), 'stored hashed')
    t.ok(dev.notices.some(n => n.includes('JWT_SECRET is not set')), 'the random JWT secret is announced')

    const withSecret = await start({ JWT_SECRET })
    t.notOk(withSecret.notices.some(n => n.includes('dev key')), 'no development key once any credential is configured')
    t.notOk(withSecret.notices.some(n => n.includes('JWT_SECRET')))
    t.equal(
      (await withSecret.inject({ url: '/api/auth/me', headers: { 'x-api-key': key } })).statusCode,
      200,
      'not revoked by a start that made none'
    )
    const again = await start()
    t.equal(
      (await again.inject({ url: '/api/auth/me', headers: { 'x-api-key': key } })).statusCode,
      401,
      'the next development key replaces it'
    )

    // Without JWT_SECRET, login still works in development, with a per-process secret.
    const noSecret = await start({ ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: ADMIN.password })
    const token = (await login(noSecret, ADMIN.email, ADMIN.password)).json().token
    t.equal((await noSecret.inject({ url: '/api/auth/me', headers: bearer(token) })).statusCode, 200)
    t.equal(
      (await withSecret.inject({ url: '/api/auth/me', headers: bearer(token) })).statusCode,
      401,
      'another process does not accept it'
    )
    t.throws(() => loadConfig({ NODE_ENV: 'production' }), /JWT_SECRET: required when NODE_ENV=production/)
  })
}

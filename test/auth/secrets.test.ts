// Acceptance 4: after a full auth flow (passwords, JWTs, refresh, API keys, env keys, Supabase,
// metrics token, refused query credentials, failed logins, revocation) the database holds no plaintext
// key or password and the captured logs hold no token, key or password. PGlite and PostgreSQL.
import t from 'tap'
import { hashApiKey } from '../../src/auth/api-keys.js'
import { startSupabaseProject } from '../fixtures/jwks-server.js'
import { ADMIN, JWT_SECRET, adminToken, apiKeyWithRole, backends, bearer, buildOn, userWithRole } from './support.js'

const SEED_ADMIN = 'seeded-admin-key-0123456789abcdef'

for (const backend of backends) {
  t.test(
    `${backend.name}: no plaintext secret in the database or the logs after a full auth flow`,
    { skip: backend.skip },
    async t => {
      const project = await startSupabaseProject()
      t.teardown(() => project.close())
      const logs: string[] = []
      const app = await buildOn(t, backend, {
        logs,
        env: {
          SUPABASE_URL: project.url,
          VALID_API_KEYS: `${SEED_ADMIN}:admin`,
          METRICS_TOKEN: 'metrics-token-0123456789'
        }
      })
      const admin = await adminToken(app)
      const user = await userWithRole(app, admin, 'premium')
      const { key, id } = await apiKeyWithRole(app, admin, 'user')
      const supabaseToken = await project.mint()
      const refreshed = (
        await app.inject({ method: 'POST', url: '/api/auth/refresh', headers: bearer(user.token) })
      ).json().token
      const requests = [
        { url: '/api/auth/me', headers: { 'x-api-key': key } },
        { url: '/api/auth/me', headers: { 'x-api-key': SEED_ADMIN } },
        { url: '/api/auth/me', headers: bearer(supabaseToken) },
        { url: '/api/auth/me', headers: bearer(refreshed) },
        { url: '/api/metrics', headers: bearer('metrics-token-0123456789') },
        { url: `/api/auth/me?token=${user.token}` },
        { url: `/api/auth/me?api_key=${key}` },
        { url: '/api/auth/me', headers: { 'x-api-key': key + 'x' } },
        { url: '/api/auth/me', headers: bearer(user.token + 'x') },
        { url: '/api/auth/keys', headers: { 'x-api-key': key } },
        {
          method: 'POST' as const,
          url: '/api/auth/login',
          payload: { email: user.email, password: 'wrong-' + user.password }
        },
        { method: 'DELETE' as const, url: `/api/auth/keys/${id}`, headers: bearer(admin) },
        { url: '/api/auth/me', headers: { 'x-api-key': key } }
      ]
      for (const request of requests) await app.inject(request)
      await app.auth.apiKeys.flush()

      const secrets = [
        ADMIN.password,
        user.password,
        'wrong-' + user.password,
        key,
        SEED_ADMIN,
        admin,
        user.token,
        refreshed,
        supabaseToken,
        JWT_SECRET,
        'metrics-token-0123456789'
      ]
      const rows = JSON.stringify([
        ...(await app.db.query('SELECT * FROM users')),
        ...(await app.db.query('SELECT * FROM api_keys'))
      ])
      for (const secret of secrets) t.notOk(rows.includes(secret), `database: no ${secret.slice(0, 6)}…`)
      t.ok(rows.includes(hashApiKey(key)), 'the key hash is what is stored')
      t.match(rows, /scrypt\$4096\$8\$1\$/, 'passwords are scrypt hashes (PASSWORD_HASH_COST=12)')

      t.ok(logs.length > 10, `${logs.length} log lines captured (one per request, plus start-up)`)
      const all = logs.join('\n')
      for (const secret of secrets) t.notOk(all.includes(secret), `logs: no ${secret.slice(0, 6)}…`)
      // Parts of a token are no safer than the token: its signature must not show either.
      for (const token of [admin, user.token, supabaseToken]) { t.notOk(all.includes(token.split('.')[2]), 'logs: no token signature') }
    }
  )
}

// Credentials from the environment: VALID_API_KEYS seeding (idempotent, the environment stays the source
// of truth) and configuration errors that never echo a secret. Runs on PGlite and on PostgreSQL.
import t from 'tap'
import { loadConfig, ConfigError } from '../../src/config.js'
import { hashApiKey } from '../../src/auth/api-keys.js'
import { build, pglite } from '../support.js'
import { JWT_SECRET, backends } from './support.js'

const SEED_USER = 'seeded-user-key-0123456789abcdef'
const SEED_ADMIN = 'seeded-admin-key-0123456789abcdef'

t.test('configuration errors never echo a secret', async t => {
  const error = t.throws(() =>
    loadConfig({ VALID_API_KEYS: 'short:admin,a-long-enough-key-1234567890:root', JWT_SECRET: 'too-short-secret' })
  ) as ConfigError
  t.ok(error instanceof ConfigError)
  t.match(error.message, /VALID_API_KEYS: entry 1: the key must be 20–256 characters; entry 2: role must be one of/)
  t.match(error.message, /JWT_SECRET=\(value hidden\)/)
  for (const secret of ['short', 'a-long-enough-key-1234567890', 'too-short-secret']) { t.notOk(error.message.includes(secret), `hides ${secret}`) }
})

for (const backend of backends) {
  t.test(
    `${backend.name}: VALID_API_KEYS seeds idempotently; the environment stays the source of truth`,
    { skip: backend.skip },
    async t => {
      const base = await backend.options()
      const db = base.db === null ? null : await pglite()
      const start = (keys: string) => build(t, { db, env: { JWT_SECRET, ...base.env, VALID_API_KEYS: keys } })
      const whoAmI = async (app: Awaited<ReturnType<typeof start>>, key: string) =>
        app.inject({ url: '/api/auth/me', headers: { 'x-api-key': key } })

      const first = await start(`${SEED_USER}:user, ${SEED_ADMIN}:admin`)
      t.equal((await whoAmI(first, SEED_USER)).json().role, 'user')
      t.equal((await whoAmI(first, SEED_ADMIN)).json().role, 'admin')
      await first.close()
      const second = await start(`${SEED_USER}:user,${SEED_ADMIN}:admin`)
      t.equal(
        (await second.db.query("SELECT count(*)::int AS n FROM api_keys WHERE source = 'env'"))[0].n,
        2,
        'no duplicates after a restart'
      )
      const [userKey] = await second.db.query('SELECT id FROM api_keys WHERE key_hash = $1', [hashApiKey(SEED_USER)])
      await second.close()

      const third = await start(`${SEED_USER}:premium`)
      t.equal((await whoAmI(third, SEED_USER)).json().role, 'premium', 'a changed role is applied')
      t.equal((await whoAmI(third, SEED_ADMIN)).statusCode, 401, 'a key removed from VALID_API_KEYS is revoked')
      await third
        .inject({ method: 'DELETE', url: `/api/auth/keys/${userKey.id}`, headers: { 'x-api-key': SEED_USER } })
        .then(r => t.equal(r.statusCode, 403))
      await third.db.query('UPDATE api_keys SET revoked_at = now() WHERE id = $1', [userKey.id])
      await third.close()
      const fourth = await start(`${SEED_USER}:premium`)
      t.equal((await whoAmI(fourth, SEED_USER)).statusCode, 401, 'a revoked env key stays revoked across restarts')
    }
  )
}

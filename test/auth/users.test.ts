// Users: ADMIN_EMAIL/ADMIN_PASSWORD seeding (idempotent, rotation, hash-cost upgrade) and
// POST /api/auth/users. Runs on PGlite and on PostgreSQL.
import t from 'tap'
import { build, pglite } from '../support.js'
import { ADMIN, AUTH_ENV, adminToken, backends, bearer, buildOn, login, userWithRole } from './support.js'

for (const backend of backends) {
  t.test(
    `${backend.name}: restarting with the same ADMIN_EMAIL keeps one admin; a new ADMIN_PASSWORD replaces the old`,
    { skip: backend.skip },
    async t => {
      const base = await backend.options()
      const db = base.db === null ? null : await pglite() // PGlite: reuse one database across the restarts
      const start = (env: Record<string, string> = {}) => build(t, { db, env: { ...AUTH_ENV, ...base.env, ...env } })
      const first = await start()
      const [{ id }] = await first.db.query('SELECT id FROM users')
      await first.close()
      const second = await start()
      t.same(await second.db.query('SELECT id FROM users'), [{ id }], 'same single row after a restart')
      await second.db.query("UPDATE users SET role = 'user' WHERE id = $1", [id])
      await second.close()
      const third = await start({ ADMIN_PASSWORD: 'a-brand-new-password' })
      t.same(
        await third.db.query('SELECT id, role FROM users'),
        [{ id, role: 'admin' }],
        'role restored to admin, same user'
      )
      t.equal((await login(third, ADMIN.email, ADMIN.password)).statusCode, 401, 'old password no longer works')
      t.equal((await login(third, ADMIN.email, 'a-brand-new-password')).statusCode, 200, 'new password works')
      const hashOf = async (app = third) =>
        String((await app.db.query('SELECT password_hash FROM users WHERE id = $1', [id]))[0].password_hash)
      t.match(await hashOf(), /^scrypt\$4096\$/)
      await third.close()

      const fourth = await start({ ADMIN_PASSWORD: 'a-brand-new-password', PASSWORD_HASH_COST: '13' })
      t.match(await hashOf(fourth), /^scrypt\$4096\$/, 'a start does not rehash a password that still matches')
      t.equal((await login(fourth, ADMIN.email, 'a-brand-new-password')).statusCode, 200)
      t.match(
        await hashOf(fourth),
        /^scrypt\$8192\$/,
        'a raised PASSWORD_HASH_COST upgrades the hash at the next login'
      )
      t.equal(
        (await login(fourth, ADMIN.email, 'a-brand-new-password')).statusCode,
        200,
        'and the upgraded hash verifies'
      )
    }
  )

  t.test(`${backend.name}: POST /api/auth/users`, { skip: backend.skip }, async t => {
    const app = await buildOn(t, backend)
    const admin = await adminToken(app)
    const create = (payload: object, token = admin) =>
      app.inject({ method: 'POST', url: '/api/auth/users', headers: bearer(token), payload })
    const res = await create({ email: 'New.Person@Example.com', password: 'a-long-password-1' })
    t.equal(res.statusCode, 201)
    t.match(res.json(), { email: 'new.person@example.com', role: 'user' })
    t.ok(Date.parse(res.json().createdAt))
    t.equal(
      (await create({ email: 'new.person@example.COM', password: 'another-password-1', role: 'admin' })).statusCode,
      409,
      'emails are unique regardless of case'
    )
    const short = await create({ email: 'short@example.com', password: 'short' })
    t.equal(short.statusCode, 400)
    t.match(short.json().details, [{ field: 'body.password' }])
    t.equal(
      (await create({ email: 'r@example.com', password: 'a-long-password-1', role: 'root' })).statusCode,
      400,
      'unknown role'
    )
    const premium = await userWithRole(app, admin, 'premium')
    const forbidden = await create({ email: 'p@example.com', password: 'a-long-password-1' }, premium.token)
    t.equal(forbidden.statusCode, 403)
    t.equal(forbidden.json().message, 'Missing permission: agent:manage')
  })
}

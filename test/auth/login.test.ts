// Login, /me and refresh for every role; token expiry; wrong credentials; auth_attempts_total.
// Runs on PGlite and on PostgreSQL.
import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  ADMIN,
  adminToken,
  apiKeyWithRole,
  backends,
  bearer,
  buildOn,
  counterValue,
  GRANTS,
  login,
  userWithRole
} from './support.js'
import { ROLES } from '../../src/auth/roles.js'

for (const backend of backends) {
  t.test(`${backend.name}: login, /me and refresh for every role`, { skip: backend.skip }, async t => {
    const app = await buildOn(t, backend)
    const admin = await adminToken(app)
    for (const role of ROLES) {
      const user = await userWithRole(app, admin, role)
      const loginRes = await login(app, user.email.toUpperCase(), user.password)
      t.equal(loginRes.statusCode, 200, `${role}: login (email case-insensitive)`)
      const body = loginRes.json()
      t.equal(body.tokenType, 'Bearer')
      t.equal(body.expiresIn, 3600, 'JWT_EXPIRES_IN default 1h, in seconds')
      t.same(body.user, { id: user.id, email: user.email, role })
      const [, payload] = body.token.split('.')
      const claims = JSON.parse(Buffer.from(payload, 'base64url').toString())
      t.match(claims, { sub: user.id, email: user.email, role, iss: 'amrikyy-agent-api', aud: 'amrikyy-agent-clients' })
      t.equal(claims.exp - claims.iat, 3600)

      const me = await app.inject({ url: '/api/auth/me', headers: bearer(body.token) })
      t.equal(me.statusCode, 200, `${role}: /me`)
      t.same(me.json(), {
        id: `user:${user.id}`,
        kind: 'user',
        role,
        email: user.email,
        permissions: GRANTS[role]
      })

      const refreshed = await app.inject({ method: 'POST', url: '/api/auth/refresh', headers: bearer(body.token) })
      t.equal(refreshed.statusCode, 200, `${role}: refresh`)
      t.same(refreshed.json().user, body.user)
      const again = await app.inject({ url: '/api/auth/me', headers: bearer(refreshed.json().token) })
      t.equal(again.json().role, role, `${role}: the refreshed token works`)
    }
  })

  t.test(
    `${backend.name}: refresh re-reads the role and refuses other credentials`,
    { skip: backend.skip },
    async t => {
      const app = await buildOn(t, backend)
      const admin = await adminToken(app)
      const user = await userWithRole(app, admin, 'user')
      await app.db.query("UPDATE users SET role = 'premium' WHERE id = $1", [user.id])
      const refreshed = await app.inject({ method: 'POST', url: '/api/auth/refresh', headers: bearer(user.token) })
      t.equal(refreshed.json().user.role, 'premium', 'the new token carries the current role')

      const key = await apiKeyWithRole(app, admin, 'user')
      const viaKey = await app.inject({ method: 'POST', url: '/api/auth/refresh', headers: { 'x-api-key': key.key } })
      t.equal(viaKey.statusCode, 400)
      t.match(viaKey.json().message, /Only tokens issued by POST \/api\/auth\/login/)

      await app.db.query('DELETE FROM users WHERE id = $1', [user.id])
      const gone = await app.inject({ method: 'POST', url: '/api/auth/refresh', headers: bearer(user.token) })
      t.equal(gone.statusCode, 401, 'a deleted account cannot refresh')
    }
  )

  t.test(`${backend.name}: an issued token expires`, { skip: backend.skip }, async t => {
    const app = await buildOn(t, backend, { env: { JWT_EXPIRES_IN: '1s' } })
    const res = await login(app, ADMIN.email, ADMIN.password)
    t.equal(res.json().expiresIn, 1)
    const token = res.json().token
    t.equal((await app.inject({ url: '/api/auth/me', headers: bearer(token) })).statusCode, 200, 'valid at first')
    await sleep(2100) // exp has one-second resolution
    const expired = await app.inject({ url: '/api/auth/me', headers: bearer(token) })
    t.equal(expired.statusCode, 401)
    t.equal(expired.json().message, 'Token expired')
    t.equal(expired.headers['www-authenticate'], 'Bearer realm="amrikyy-agent-api"')
    const refresh = await app.inject({ method: 'POST', url: '/api/auth/refresh', headers: bearer(token) })
    t.equal(refresh.statusCode, 401, 'an expired token cannot be refreshed')
  })

  t.test(`${backend.name}: wrong password and unknown email get the same 401`, { skip: backend.skip }, async t => {
    const app = await buildOn(t, backend)
    const wrong = await login(app, ADMIN.email, 'not-the-password')
    const unknown = await login(app, 'nobody@example.com', 'not-the-password')
    t.equal(wrong.statusCode, 401)
    t.equal(unknown.statusCode, 401)
    t.equal(wrong.json().message, unknown.json().message)
    t.equal(wrong.json().code, 'AMK_UNAUTHORIZED')
    const invalid = await app.inject({
      method: 'POST',
      url: '/api/auth/login',
      payload: { email: 'not-an-email', password: 'x', extra: 1 }
    })
    t.equal(invalid.statusCode, 400)
    t.equal(await counterValue(app, 'auth_attempts_total', { method: 'password', result: 'failure' }), 2)
    await login(app, ADMIN.email, ADMIN.password)
    t.equal(await counterValue(app, 'auth_attempts_total', { method: 'password', result: 'success' }), 1)
    const exposition = await app.meters.registry.metrics()
    t.match(exposition, /auth_attempts_total\{method="password",result="success"\} 1/)
  })
}

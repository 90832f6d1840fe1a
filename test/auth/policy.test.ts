// Route policy (issue 3, acceptance 6): a route with neither permission nor public fails boot; the
// authenticator hook other plugins use (stream tickets); credential order; METRICS_TOKEN; and the
// framework-free pieces (passwords, durations, credential extraction).
import t from 'tap'
import type { FastifyRequest } from 'fastify'
import { build } from '../support.js'
import { hashPassword, verifyPassword } from '../../src/auth/passwords.js'
import { parseDuration } from '../../src/auth/jwt.js'
import { extractCredential } from '../../src/auth/credentials.js'
import { UnauthorizedError } from '../../src/errors.js'
import { AUTH_ENV, adminToken, apiKeyWithRole, backends, bearer, buildOn } from './support.js'

t.test('a route with neither config.permission nor config.public makes ready() fail', async t => {
  await t.rejects(build(t, { env: AUTH_ENV, before: app => { app.get('/api/oops', async () => 'open') } }),
    /Route GET \/api\/oops declares neither config\.permission nor config\.public/)
  await t.rejects(
    build(t, {
      env: AUTH_ENV,
      before: app => {
        app.post('/api/oops', { config: { rateLimits: [] } }, async () => 'open')
      }
    }),
    /Route POST \/api\/oops declares neither/
  )
  const ok = await build(t, {
    env: AUTH_ENV,
    before: app => {
      app.get('/api/open', { config: { public: true } }, async () => ({ open: true }))
    }
  })
  const res = await ok.inject('/api/open?token=whatever')
  t.equal(res.statusCode, 200, 'public routes do not authenticate, so nothing is refused there')
})

t.test('authenticators added by other plugins (stream tickets) run when no header credential is sent', async t => {
  const seen: string[] = []
  const app = await buildOn(t, backends[0], {
    before: app => {
      app.authenticators.add(async (request: FastifyRequest) => {
        const ticket = (request.query as { ticket?: string }).ticket
        if (ticket === undefined) return null
        seen.push(ticket)
        if (ticket !== 'good-ticket') throw new UnauthorizedError('Invalid or used stream ticket')
        return { id: 'user:ticket-owner', kind: 'user', role: 'premium' }
      })
    }
  })
  const ok = await app.inject('/api/auth/me?ticket=good-ticket')
  t.equal(ok.statusCode, 200)
  t.match(ok.json(), { id: 'user:ticket-owner', role: 'premium' })
  const bad = await app.inject('/api/auth/me?ticket=stale')
  t.equal(bad.statusCode, 401)
  t.equal(bad.json().message, 'Invalid or used stream ticket')
  t.equal(bad.headers['www-authenticate'], 'Bearer realm="amrikyy-agent-api"')
  const { key } = await apiKeyWithRole(app, await adminToken(app), 'user')
  const both = await app.inject({ url: '/api/auth/me?ticket=good-ticket', headers: { 'x-api-key': key } })
  t.equal(both.json().kind, 'api-key', 'a header credential wins; the ticket authenticator is not asked')
  t.same(seen, ['good-ticket', 'stale'])
  const none = await app.inject('/api/auth/me')
  t.equal(none.statusCode, 401)
  t.match(none.json().message, /Authentication required/)
})

t.test('x-api-key is used before Authorization', async t => {
  const app = await buildOn(t, backends[0])
  const admin = await adminToken(app)
  const { key } = await apiKeyWithRole(app, admin, 'user')
  const res = await app.inject({ url: '/api/auth/me', headers: { 'x-api-key': key, ...bearer(admin) } })
  t.equal(res.json().role, 'user')
  const bad = await app.inject({
    url: '/api/auth/me',
    headers: { 'x-api-key': 'amk_nope-nope-nope-nope-nope', ...bearer(admin) }
  })
  t.equal(bad.statusCode, 401, 'a bad key is not rescued by a good token')
})

t.test('METRICS_TOKEN reads the metrics and nothing else', async t => {
  const token = 'prometheus-scrape-token-0123'
  const app = await buildOn(t, backends[0], { env: { METRICS_TOKEN: token } })
  t.equal((await app.inject({ url: '/api/metrics', headers: bearer(token) })).statusCode, 200)
  t.equal((await app.inject({ url: '/api/metrics', headers: bearer(token + 'x') })).statusCode, 401)
  t.equal((await app.inject({ url: '/api/auth/me', headers: bearer(token) })).statusCode, 401)
  t.equal((await app.inject({ method: 'POST', url: '/api/metrics/reset', headers: bearer(token) })).statusCode, 401)
  t.equal((await app.inject({ url: '/api/metrics' })).statusCode, 401)
  const pub = await buildOn(t, backends[0], { env: { METRICS_PUBLIC: 'true' } })
  t.equal((await pub.inject({ url: '/api/metrics' })).statusCode, 200)
})

t.test('passwords: scrypt with a per-user salt, constant-time verify', async t => {
  const a = await hashPassword('correct horse battery staple')
  const b = await hashPassword('correct horse battery staple')
  t.not(a, b, 'salted')
  t.match(a, /^scrypt\$32768\$8\$1\$[A-Za-z0-9+/]+=*\$[A-Za-z0-9+/]+=*$/)
  t.equal(await verifyPassword('correct horse battery staple', a), true)
  t.equal(await verifyPassword('correct horse battery stapler', a), false)
  t.equal(await verifyPassword('ﬁne password', await hashPassword('fine password')), true, 'NFKC-normalised')
  for (const malformed of [
    '',
    'plain',
    'scrypt$1$2$3',
    'bcrypt$x$y$z$a$b',
    a.replace('32768', '1073741824'),
    a.slice(0, -8)
  ]) {
    t.equal(await verifyPassword('x', malformed), false, `malformed hash ${JSON.stringify(malformed.slice(0, 16))}`)
  }
})

t.test('JWT_EXPIRES_IN parsing', async t => {
  t.equal(parseDuration('900'), 900)
  t.equal(parseDuration('15m'), 900)
  t.equal(parseDuration('1h'), 3600)
  t.equal(parseDuration('7d'), 604_800)
  t.throws(() => parseDuration('0'))
  t.throws(() => parseDuration('1w'))
})

function statusOf (fn: () => unknown): number | undefined {
  try {
    fn()
  } catch (err) {
    return (err as { statusCode?: number }).statusCode
  }
}

t.test('credential extraction', async t => {
  t.same(extractCredential({ 'x-api-key': 'k', authorization: 'Bearer t' }, {}), { type: 'api-key', value: 'k' })
  t.same(extractCredential({ authorization: 'bearer   abc.def.ghi' }, {}), { type: 'bearer', value: 'abc.def.ghi' })
  // One string sent to every scheme (generic SDKs): a JWT is the bearer token, anything else the API key.
  t.same(extractCredential({ 'x-api-key': 'h.p.s', authorization: 'Bearer h.p.s' }, {}), {
    type: 'bearer',
    value: 'h.p.s'
  })
  t.same(extractCredential({ 'x-api-key': 'amk_k', authorization: 'Bearer amk_k' }, {}), {
    type: 'api-key',
    value: 'amk_k'
  })
  t.same(
    extractCredential({ 'x-api-key': 'h.p.s', authorization: 'Bearer x.y.z' }, {}),
    { type: 'api-key', value: 'h.p.s' },
    'different values: x-api-key first'
  )
  t.equal(extractCredential({}, { ticket: 'x', q: 'y' }), null, 'ticket is not a refused parameter')
  for (const name of ['token', 'TOKEN', 'access_token', 'apiKey', 'api_key', 'x-api-key', 'jwt']) {
    t.equal(statusOf(() => extractCredential({}, { [name]: 'v' })), 401, `?${name}= refused`)
  }
  t.equal(statusOf(() => extractCredential({ authorization: 'Token abc' }, {})), 401, 'other schemes refused')
})

// The negative suite (issue 3, acceptance 2): forged, tampered, expired, misdirected and misplaced
// credentials are all refused with 401 — and a Supabase user who set role "admin" in user_metadata is
// only a user. Supabase is configured for the whole suite, against a local JWKS server. PGlite and PostgreSQL.
import t from 'tap'
import type { FastifyInstance, InjectOptions } from 'fastify'
import { randomBytes } from 'node:crypto'
import { startSupabaseProject, type SupabaseProject } from '../fixtures/jwks-server.js'
import {
  adminToken,
  apiKeyWithRole,
  backends,
  bearer,
  buildOn,
  claims,
  counterValue,
  JWT_SECRET,
  mintHs256,
  userWithRole
} from './support.js'

interface Context {
  app: FastifyInstance
  admin: string
  userToken: string
  project: SupabaseProject
  other: SupabaseProject
}
interface Case { name: string, request(ctx: Context): Promise<InjectOptions> | InjectOptions, message?: RegExp }

const me = (headers: Record<string, string>, url = '/api/auth/me'): InjectOptions => ({ url, headers })
const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url')

const cases: Case[] = [
  { name: 'alg: none (unsigned)', request: () => me(bearer(`${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims())}.`)) },
  {
    name: 'alg: none with a signature part',
    request: () => me(bearer(mintHs256(claims(), JWT_SECRET, { alg: 'none', typ: 'JWT' })))
  },
  {
    name: 'algorithm confusion: RS256 header, HMAC over the HS secret as "public key"',
    request: () => me(bearer(mintHs256(claims(), JWT_SECRET, { alg: 'RS256', typ: 'JWT' })))
  },
  {
    name: 'algorithm pinning: HS512 is not HS256',
    request: () => me(bearer(mintHs256(claims(), JWT_SECRET, { alg: 'HS512', typ: 'JWT' })))
  },
  {
    name: 'tampered payload (user → admin, signature kept)',
    request: ({ userToken }) => {
      const [header, payload, signature] = userToken.split('.')
      const forged = { ...JSON.parse(Buffer.from(payload, 'base64url').toString()), role: 'admin' }
      return me(bearer(`${header}.${b64(forged)}.${signature}`))
    }
  },
  { name: 'wrong secret', request: () => me(bearer(mintHs256(claims(), 'another-secret-of-sufficient-length-xyz'))) },
  {
    name: 'expired',
    request: () => me(bearer(mintHs256(claims({ iat: 1_600_000_000, exp: 1_600_000_600 })))),
    message: /expired/
  },
  {
    name: 'nbf in the future',
    request: () => me(bearer(mintHs256(claims({ nbf: Math.floor(Date.now() / 1000) + 3600 }))))
  },
  { name: 'wrong issuer', request: () => me(bearer(mintHs256(claims({ iss: 'someone-else' })))) },
  { name: 'wrong audience', request: () => me(bearer(mintHs256(claims({ aud: 'another-audience' })))) },
  { name: 'no exp claim', request: () => me(bearer(mintHs256(claims({ exp: undefined })))) },
  { name: 'no sub claim', request: () => me(bearer(mintHs256(claims({ sub: undefined })))) },
  { name: 'role claim that is not a role', request: () => me(bearer(mintHs256(claims({ role: 'superuser' })))) },
  { name: 'malformed token (two parts)', request: () => me(bearer('abc.def')) },
  { name: 'malformed token (garbage segments)', request: () => me(bearer('eyJ!!!.%%%.xyz')) },
  {
    name: 'malformed Authorization scheme (Basic)',
    request: () => me({ authorization: `Basic ${Buffer.from('admin:pw').toString('base64')}` })
  },
  { name: 'empty Bearer', request: () => me({ authorization: 'Bearer ' }) },
  {
    name: 'unknown API key',
    request: () => me({ 'x-api-key': `amk_${randomBytes(30).toString('base64url')}` }),
    message: /^Invalid API key$/
  },
  {
    name: 'API key with one character changed',
    request: async ({ app, admin }) => {
      const { key } = await apiKeyWithRole(app, admin, 'admin')
      return me({ 'x-api-key': key.slice(0, -1) + (key.endsWith('a') ? 'b' : 'a') })
    },
    message: /^Invalid API key$/
  },
  {
    name: 'the stored hash of a key used as the key',
    request: async ({ app, admin }) => {
      const { id } = await apiKeyWithRole(app, admin, 'admin')
      const [row] = await app.db.query('SELECT key_hash FROM api_keys WHERE id = $1', [id])
      return me({ 'x-api-key': String(row.key_hash) })
    },
    message: /^Invalid API key$/
  },
  {
    name: 'revoked API key (used, cached, then revoked)',
    request: async ({ app, admin }) => {
      const { key, id } = await apiKeyWithRole(app, admin, 'admin')
      if ((await app.inject(me({ 'x-api-key': key }))).statusCode !== 200) { throw new Error('key should work before revocation') }
      await app.inject({ method: 'DELETE', url: `/api/auth/keys/${id}`, headers: bearer(admin) })
      return me({ 'x-api-key': key })
    },
    message: /^Invalid API key$/
  },
  {
    name: 'expired API key',
    request: async ({ app, admin }) => {
      const { key, id } = await apiKeyWithRole(app, admin, 'admin', {
        expiresAt: new Date(Date.now() + 3_600_000).toISOString()
      })
      await app.db.query("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1", [id])
      return me({ 'x-api-key': key })
    },
    message: /^Invalid API key$/
  },
  {
    name: 'token in the query string (?token=)',
    request: ({ userToken }) => ({ url: `/api/auth/me?token=${userToken}` }),
    message: /query string/
  },
  {
    name: 'token in the query string (?access_token=) next to a valid header',
    request: ({ userToken }) => ({ url: `/api/auth/me?access_token=${userToken}`, headers: bearer(userToken) }),
    message: /query string/
  },
  {
    name: 'API key in the query string (?apiKey=)',
    request: async ({ app, admin }) => ({
      url: `/api/auth/me?apiKey=${(await apiKeyWithRole(app, admin, 'user')).key}`
    }),
    message: /query string/
  },
  {
    name: 'API key in the query string (?api_key=)',
    request: () => ({ url: `/api/metrics/json?api_key=amk_${'x'.repeat(40)}` }),
    message: /query string/
  },
  {
    name: 'Supabase token from another project (its own issuer and JWKS)',
    request: async ({ other }) => me(bearer(await other.mint()))
  },
  {
    name: "Supabase token signed by another project's key, claiming this project's issuer",
    request: async ({ project, other }) => me(bearer(await project.mint({}, { keysOf: other })))
  },
  {
    name: "Supabase token signed by another key under this project's kid",
    request: async ({ project, other }) =>
      me(bearer(await project.mint({}, { keysOf: other, kid: project.kids.ES256 })))
  },
  {
    name: 'Supabase token, expired',
    request: async ({ project }) => me(bearer(await project.mint({}, { expiresIn: -60 }))),
    message: /expired/
  },
  {
    name: 'Supabase token, wrong audience',
    request: async ({ project }) => me(bearer(await project.mint({}, { audience: 'anon' })))
  },
  {
    name: 'Supabase issuer, HS256 with our secret (no SUPABASE_JWT_SECRET configured)',
    request: ({ project }) => me(bearer(mintHs256({ ...claims(), iss: project.issuer, aud: 'authenticated' })))
  }
]

for (const backend of backends) {
  t.test(`${backend.name}: the negative suite`, { skip: backend.skip }, async t => {
    const project = await startSupabaseProject()
    const other = await startSupabaseProject()
    t.teardown(() => Promise.all([project.close(), other.close()]))
    const app = await buildOn(t, backend, { env: { SUPABASE_URL: project.url } })
    const admin = await adminToken(app)
    const { token: userToken } = await userWithRole(app, admin, 'user')
    const ctx: Context = { app, admin, userToken, project, other }
    t.ok(cases.length >= 15, `${cases.length} cases`)
    // Controls: the same minting paths produce accepted credentials when nothing is wrong with them.
    t.equal((await app.inject(me(bearer(mintHs256(claims()))))).statusCode, 200, 'control: a well-formed HS256 token')
    t.equal((await app.inject(me(bearer(await project.mint())))).statusCode, 200, 'control: a Supabase ES256 token')
    t.equal(
      (await app.inject(me(bearer(await project.mint({}, { alg: 'RS256' }))))).statusCode,
      200,
      'control: a Supabase RS256 token'
    )

    for (const c of cases) {
      const res = await app.inject(await c.request(ctx))
      t.equal(res.statusCode, 401, c.name)
      t.equal(res.json().code, 'AMK_UNAUTHORIZED', `${c.name}: code`)
      if (c.message) t.match(res.json().message, c.message, `${c.name}: message`)
    }
    t.ok(
      (await counterValue(app, 'auth_attempts_total', { method: 'jwt', result: 'failure' })) >= 12,
      'jwt failures counted'
    )
    t.ok(
      (await counterValue(app, 'auth_attempts_total', { method: 'api_key', result: 'failure' })) >= 5,
      'api key failures counted'
    )
    t.ok(
      (await counterValue(app, 'auth_attempts_total', { method: 'supabase', result: 'failure' })) >= 4,
      'supabase failures counted'
    )
  })

  t.test(
    `${backend.name}: a Supabase user claiming admin in user_metadata is a user`,
    { skip: backend.skip },
    async t => {
      const project = await startSupabaseProject()
      t.teardown(() => project.close())
      const app = await buildOn(t, backend, { env: { SUPABASE_URL: project.url } })
      const token = await project.mint({
        sub: 'aaaaaaaa-0000-4000-8000-000000000001',
        user_metadata: { role: 'admin' },
        role: 'authenticated'
      })
      const res = await app.inject(me(bearer(token)))
      t.equal(res.statusCode, 200)
      t.match(res.json(), { id: 'supabase:aaaaaaaa-0000-4000-8000-000000000001', kind: 'supabase', role: 'user' })
      const admin = await app.inject({ url: '/api/auth/keys', headers: bearer(token) })
      t.equal(admin.statusCode, 403)
      t.equal(admin.json().message, 'Missing permission: agent:manage')
      const bogus = await app.inject(me(bearer(await project.mint({ app_metadata: { role: 'superuser' } }))))
      t.equal(bogus.json().role, 'user', 'an app_metadata role that is not one of ours falls back to user')
    }
  )
}

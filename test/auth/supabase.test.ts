// Supabase Auth access tokens against a local stand-in of a project's Auth server (test/fixtures/jwks-server.ts):
// ES256 and RS256 through the JWKS, legacy HS256 through SUPABASE_JWT_SECRET, the role from app_metadata,
// JWKS caching, an unreachable JWKS (503, then recovery), the health component. PGlite and PostgreSQL.
import t from 'tap'
import { startSupabaseProject } from '../fixtures/jwks-server.js'
import { backends, bearer, buildOn, claims, mintHs256 } from './support.js'

const LEGACY_SECRET = 'super-secret-jwt-token-with-at-least-32-characters-long'

for (const backend of backends) {
  t.test(`${backend.name}: Supabase access tokens`, { skip: backend.skip }, async t => {
    const project = await startSupabaseProject()
    t.teardown(() => project.close())
    const app = await buildOn(t, backend, { env: { SUPABASE_URL: `${project.url}/` } })
    const me = async (token: string) => app.inject({ url: '/api/auth/me', headers: bearer(token) })

    const es = await me(
      await project.mint({
        sub: 'user-es',
        email: 'es@example.com',
        app_metadata: { provider: 'email', role: 'premium' }
      })
    )
    t.equal(es.statusCode, 200, 'ES256')
    t.same(es.json(), {
      id: 'supabase:user-es',
      kind: 'supabase',
      role: 'premium',
      email: 'es@example.com',
      permissions: ['agent:read', 'agent:execute', 'agent:priority', 'agent:streaming']
    })
    const rs = await me(await project.mint({ sub: 'user-rs' }, { alg: 'RS256' }))
    t.equal(rs.statusCode, 200, 'RS256')
    t.equal(rs.json().role, 'user', 'no app_metadata.role → user')
    t.equal(project.jwksRequests, 1, 'the JWKS is fetched once and cached')

    const internal = await me(await project.mint({ app_metadata: { role: 'internal' } }))
    t.equal(internal.json().role, 'internal', 'app_metadata.role is trusted (only the service role can set it)')
    const anonLike = mintHs256(
      { iss: 'supabase', ref: 'project', role: 'anon', iat: 1, exp: 9_999_999_999 },
      LEGACY_SECRET
    )
    t.equal((await me(anonLike)).statusCode, 401, 'an anon key is not a user credential')

    const info = await app.inject('/api')
    t.equal(info.json().features.supabaseAuth, true)
    t.match(app.features.auth, /Supabase Auth \(JWKS\)/)
    const health = (await app.inject('/api/health')).json()
    t.match(health.components.supabase, { status: 'healthy', message: 'JWKS has 2 key(s)' })
  })

  t.test(`${backend.name}: legacy HS256 projects (SUPABASE_JWT_SECRET)`, { skip: backend.skip }, async t => {
    const project = await startSupabaseProject()
    t.teardown(() => project.close())
    const app = await buildOn(t, backend, { env: { SUPABASE_URL: project.url, SUPABASE_JWT_SECRET: LEGACY_SECRET } })
    const supabaseClaims = (extra = {}) =>
      claims({
        iss: project.issuer,
        aud: 'authenticated',
        sub: 'legacy-user',
        role: 'authenticated',
        app_metadata: { role: 'admin' },
        ...extra
      })
    const ok = await app.inject({ url: '/api/auth/me', headers: bearer(mintHs256(supabaseClaims(), LEGACY_SECRET)) })
    t.equal(ok.statusCode, 200)
    t.match(ok.json(), { id: 'supabase:legacy-user', role: 'admin' })
    const wrong = await app.inject({
      url: '/api/auth/me',
      headers: bearer(mintHs256(supabaseClaims(), 'not-the-legacy-secret-but-long-enough'))
    })
    t.equal(wrong.statusCode, 401, 'wrong secret')
    const noAud = await app.inject({
      url: '/api/auth/me',
      headers: bearer(mintHs256(supabaseClaims({ aud: undefined }), LEGACY_SECRET))
    })
    t.equal(noAud.statusCode, 401, 'audience required')
    const asymmetric = await app.inject({ url: '/api/auth/me', headers: bearer(await project.mint()) })
    t.equal(asymmetric.statusCode, 200, 'asymmetric tokens still verified through the JWKS')
  })

  t.test(`${backend.name}: an unreachable JWKS is a 503, not a 401, and recovers`, { skip: backend.skip }, async t => {
    const project = await startSupabaseProject()
    t.teardown(() => project.close())
    project.available = false
    const app = await buildOn(t, backend, { env: { SUPABASE_URL: project.url } })
    const token = await project.mint()
    const down = await app.inject({ url: '/api/auth/me', headers: bearer(token) })
    t.equal(down.statusCode, 503)
    t.equal(down.json().code, 'AMK_SERVICE_UNAVAILABLE')
    const health = await app.inject('/api/health')
    t.equal(health.statusCode, 200, 'Supabase is not critical: the service is degraded, not down')
    t.equal(health.json().status, 'degraded')
    t.equal(health.json().components.supabase.status, 'unhealthy')
    project.available = true
    t.equal(
      (await app.inject({ url: '/api/auth/me', headers: bearer(token) })).statusCode,
      200,
      'works once the JWKS answers'
    )
  })
}

t.test('without SUPABASE_URL, Supabase tokens are not accepted and nothing is fetched', async t => {
  const project = await startSupabaseProject()
  t.teardown(() => project.close())
  const app = await buildOn(t, backends[0])
  const res = await app.inject({ url: '/api/auth/me', headers: bearer(await project.mint()) })
  t.equal(res.statusCode, 401)
  t.equal(project.jwksRequests, 0)
  t.notOk('supabase' in (await app.inject('/api/health')).json().components)
})

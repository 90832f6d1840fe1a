// Role × permission, table-driven (issue 3, acceptance 3), for every credential kind (JWT, API key,
// Supabase token): through one test-only route per permission, through the real routes that exist, and
// a sweep over every protected route registered in the app (missing credential → 401; a role without
// the route's permission → 403 naming it). PGlite and PostgreSQL.
import t from 'tap'
import Fastify, { type FastifyInstance, type InjectOptions, type RouteOptions } from 'fastify'
import app, { serverOptions } from '../../src/app.js'
import { PERMISSIONS, ROLES, type Permission, type Role } from '../../src/auth/roles.js'
import { build, pglite, testConfig } from '../support.js'
import { startSupabaseProject, type SupabaseProject } from '../fixtures/jwks-server.js'
import { AUTH_ENV, GRANTS, adminToken, apiKeyWithRole, backends, bearer, userWithRole } from './support.js'

/** Real routes and the permission each needs; the request must not change state when allowed. */
const REAL_ROUTES: Array<{ permission: Permission; request: InjectOptions }> = [
  { permission: 'agent:read', request: { url: '/api/auth/me' } },
  { permission: 'agent:stats', request: { url: '/api/metrics' } },
  { permission: 'agent:stats', request: { url: '/api/metrics/json' } },
  { permission: 'agent:manage', request: { url: '/api/auth/keys' } },
  // Allowed callers reach validation (400: empty body); others are stopped before it.
  { permission: 'agent:manage', request: { method: 'POST', url: '/api/auth/users', payload: {} } },
  {
    permission: 'agent:manage',
    request: { method: 'DELETE', url: '/api/auth/keys/00000000-0000-4000-8000-000000000000' }
  }
]

const ENV = { RATE_LIMIT_GLOBAL_MAX: '100000', RATE_LIMIT_ADMIN_MAX: '100000' }
const slug = (p: Permission) => p.replace(':', '-')

function testRoutes (instance: FastifyInstance) {
  for (const permission of PERMISSIONS) {
    instance.get(`/test/permission/${slug(permission)}`, { config: { permission } }, async request => ({
      ok: true,
      role: request.caller?.role
    }))
  }
}

async function credentials (app: FastifyInstance, project: SupabaseProject) {
  const admin = await adminToken(app)
  const out: Array<{ kind: string, role: Role, headers: Record<string, string> }> = []
  for (const role of ROLES) {
    out.push({ kind: 'jwt', role, headers: bearer((await userWithRole(app, admin, role)).token) })
    out.push({ kind: 'api key', role, headers: { 'x-api-key': (await apiKeyWithRole(app, admin, role)).key } })
    out.push({
      kind: 'supabase',
      role,
      headers: bearer(await project.mint({ app_metadata: { provider: 'email', role } }))
    })
  }
  return out
}

for (const backend of backends) {
  t.test(`${backend.name}: role × permission`, { skip: backend.skip }, async t => {
    const project = await startSupabaseProject()
    t.teardown(() => project.close())
    const base = await backend.options()
    const app = await build(t, {
      ...base,
      env: { ...AUTH_ENV, ...ENV, SUPABASE_URL: project.url, ...base.env },
      before: testRoutes
    })

    for (const { kind, role, headers } of await credentials(app, project)) {
      for (const permission of PERMISSIONS) {
        const res = await app.inject({ url: `/test/permission/${slug(permission)}`, headers })
        const allowed = GRANTS[role].includes(permission)
        t.equal(res.statusCode, allowed ? 200 : 403, `${kind} ${role} × ${permission}`)
        if (allowed) t.equal(res.json().role, role)
        else { t.same(res.json().details, { permission, role }, `${kind} ${role} × ${permission}: 403 names the permission`) }
      }
      for (const route of REAL_ROUTES) {
        const res = await app.inject({ ...route.request, headers })
        const label = `${kind} ${role} → ${route.request.method ?? 'GET'} ${route.request.url} (${route.permission})`
        if (GRANTS[role].includes(route.permission)) { t.notOk([401, 403].includes(res.statusCode), `${label}: allowed (${res.statusCode})`) } else t.equal(res.json().message, `Missing permission: ${route.permission}`, `${label}: 403`)
      }
    }
  })
}

t.test(
  'sweep: every protected route refuses a missing credential (401) and a role without its permission (403)',
  async t => {
    const config = testConfig({ ...AUTH_ENV, ...ENV })
    const server = Fastify(serverOptions(config, false))
    const routes: RouteOptions[] = []
    server.addHook('onRoute', route => {
      routes.push(route)
    })
    await server.register(app, { config, db: await pglite() })
    t.teardown(() => server.close())
    await server.ready()

    const admin = await adminToken(server)
    const keys = Object.fromEntries(
      await Promise.all(ROLES.map(async role => [role, (await apiKeyWithRole(server, admin, role)).key]))
    ) as Record<Role, string>
    // Routes registered before the auth plugin (the CORS preflight) and Swagger UI's are outside the policy.
    const protectedRoutes = routes.filter(r => r.config?.permission && r.method !== 'HEAD')
    t.ok(protectedRoutes.length >= 8, `${protectedRoutes.length} protected routes`)
    for (const route of protectedRoutes) {
      const permission = route.config!.permission!
      const url = route.url.replace(/:(\w+)/g, '00000000-0000-4000-8000-000000000000')
      for (const method of [route.method].flat()) {
        const anonymous = await server.inject({ method: method as InjectOptions['method'], url })
        t.equal(anonymous.statusCode, 401, `${method} ${route.url}: no credential → 401`)
        for (const role of ROLES.filter(r => !GRANTS[r].includes(permission))) {
          const res = await server.inject({
            method: method as InjectOptions['method'],
            url,
            headers: { 'x-api-key': keys[role] }
          })
          t.equal(res.statusCode, 403, `${method} ${route.url}: ${role} lacks ${permission} → 403`)
        }
      }
    }
  }
)

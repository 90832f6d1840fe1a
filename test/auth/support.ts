// Shared pieces of the auth tests: the two database backends every auth test runs on (the file's PGlite
// and a real PostgreSQL database), logins, key creation, hand-minted HS256 tokens and metric reads.
import type { Test } from 'tap'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { createHmac } from 'node:crypto'
import pg from 'pg'
import { build, needs, postgresDatabase, type BuildOptions } from '../support.js'
import type { Permission, Role } from '../../src/auth/roles.js'

/** Every permission: admin and internal hold them all. */
const ALL_PERMISSIONS: Permission[] = [
  'agent:read',
  'agent:execute',
  'agent:priority',
  'agent:streaming',
  'agent:manage',
  'agent:stats',
  'cache:manage'
]

/** Each role's permissions (DESIGN §7), written out, not read from src/auth/roles.ts, so a mistake there shows. */
export const GRANTS: Record<Role, Permission[]> = {
  user: ['agent:read', 'agent:execute'],
  premium: ['agent:read', 'agent:execute', 'agent:priority', 'agent:streaming'],
  admin: ALL_PERMISSIONS,
  internal: ALL_PERMISSIONS
}

export const JWT_SECRET = 'test-jwt-secret-0123456789abcdefghijklmnop'
export const ADMIN = { email: 'admin@example.com', password: 'admin-password-0123' }
/** PASSWORD_HASH_COST 12 (4 MiB) keeps the many logins of these tests quick; policy.test.ts covers the default. */
export const AUTH_ENV = {
  JWT_SECRET,
  ADMIN_EMAIL: ADMIN.email,
  ADMIN_PASSWORD: ADMIN.password,
  PASSWORD_HASH_COST: '12'
}

export interface Backend { name: string, skip: false | string, options(): Promise<BuildOptions> }

let postgresUrl: Promise<string> | null = null

async function truncate (url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  // The tables exist once the first app of the file has migrated the database.
  await client.query('TRUNCATE users, api_keys').catch(() => {})
  await client.end()
}

/** Every auth test runs once per backend (acceptance point 5). */
export const backends: Backend[] = [
  { name: 'PGlite', skip: false, options: async () => ({}) },
  {
    name: 'PostgreSQL',
    skip: needs('postgres'),
    options: async () => {
      postgresUrl ??= postgresDatabase()
      const url = await postgresUrl
      await truncate(url)
      return { db: null, env: { DATABASE_URL: url } }
    }
  }
]

/** Builds the app on a backend, with a JWT secret and an admin unless `env` overrides them. */
export async function buildOn (t: Test, backend: Backend, options: BuildOptions = {}): Promise<FastifyInstance> {
  const base = await backend.options()
  return build(t, { ...options, ...base, env: { ...AUTH_ENV, ...options.env, ...base.env } })
}

export async function login (
  app: FastifyInstance,
  email: string,
  password: string,
  remoteAddress?: string
): Promise<LightMyRequestResponse> {
  return app.inject({
    method: 'POST',
    url: '/api/auth/login',
    payload: { email, password },
    ...(remoteAddress ? { remoteAddress } : {})
  })
}

export async function adminToken (app: FastifyInstance): Promise<string> {
  const res = await login(app, ADMIN.email, ADMIN.password)
  if (res.statusCode !== 200) throw new Error(`admin login failed: ${res.body}`)
  return res.json().token
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

/** Creates a user with a role through the API and returns its credentials and token. */
export async function userWithRole (app: FastifyInstance, admin: string, role: Role) {
  const email = `${role}-${Math.random().toString(36).slice(2, 8)}@example.com`
  const password = `${role}-password-0123`
  const created = await app.inject({
    method: 'POST',
    url: '/api/auth/users',
    headers: bearer(admin),
    payload: { email, password, role }
  })
  if (created.statusCode !== 201) throw new Error(`user creation failed: ${created.body}`)
  const res = await login(app, email, password)
  return { email, password, id: created.json().id as string, token: res.json().token as string }
}

/** Creates an API key through the API; returns the key and its record. */
export async function apiKeyWithRole (
  app: FastifyInstance,
  admin: string,
  role: Role,
  extra: Record<string, unknown> = {}
) {
  const res = await app.inject({
    method: 'POST',
    url: '/api/auth/keys',
    headers: bearer(admin),
    payload: { name: `${role} key`, role, ...extra }
  })
  if (res.statusCode !== 201) throw new Error(`key creation failed: ${res.body}`)
  return res.json() as { key: string; id: string; prefix: string; role: Role }
}

const b64 = (value: unknown) =>
  Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')

/** A compact JWS signed with HMAC-SHA256 over whatever header and payload the test wants (no checks). */
export function mintHs256 (
  payload: Record<string, unknown>,
  secret: string | Buffer = JWT_SECRET,
  header: Record<string, unknown> = { alg: 'HS256', typ: 'JWT' }
): string {
  const input = `${b64(header)}.${b64(payload)}`
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`
}

/** Claims our tokens carry, valid now, overridable. */
export function claims (overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000)
  return {
    sub: '00000000-0000-4000-8000-000000000001',
    email: 'x@example.com',
    role: 'admin',
    iss: 'amrikyy-agent-api',
    aud: 'amrikyy-agent-clients',
    iat: now,
    exp: now + 600,
    ...overrides
  }
}

/** Current value of a counter series. */
export async function counterValue (
  app: FastifyInstance,
  name: string,
  labels: Record<string, string>
): Promise<number> {
  const metric = app.meters.registry.getSingleMetric(app.meters.prefix + name)
  if (!metric) return 0
  const { values } = await metric.get()
  const match = values.find(v => Object.entries(labels).every(([k, val]) => v.labels[k] === val))
  return match ? match.value : 0
}

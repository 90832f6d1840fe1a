// Issue 11: anonymous GET /api and GET /api/health name the kind of each component, never the LLM
// server's address, a host, a port, a path or a driver message carrying them; agent:stats callers and
// the METRICS_TOKEN bearer still see everything. (OPENAI_BASE_URL is only configured: nothing is sent
// there — the provider's health check makes no request, and no agent is invoked.)
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { build, freePort } from '../support.js'
import { ADMIN_KEY, MANAGEMENT_ENV, USER_KEY } from '../routes/support.js'

const METRICS_TOKEN = 'metrics-token-for-the-leak-test-0123456789'
const LLM_HOST = '10.1.2.3'
const LLM_PORT = '4567'
const ENV = { ...MANAGEMENT_ENV, OPENAI_BASE_URL: `http://${LLM_HOST}:${LLM_PORT}/v1`, METRICS_TOKEN }

const as = (app: FastifyInstance, url: string, headers: Record<string, string> = {}) =>
  app.inject({ method: 'GET', url, headers })

/** The anonymous views of /api and /api/health, with each credential that must not widen them. */
const narrowCredentials: Array<[string, Record<string, string>]> = [
  ['no credential', {}],
  ['a user key (no agent:stats)', { 'x-api-key': USER_KEY }],
  ['a bad key (public route: shown as anonymous, not 401)', { 'x-api-key': 'amk_not_a_key_000000000000000000000' }],
  ['a wrong bearer', { authorization: 'Bearer not-the-metrics-token' }]
]
const wideCredentials: Array<[string, Record<string, string>]> = [
  ['an admin key', { 'x-api-key': ADMIN_KEY }],
  ['the METRICS_TOKEN bearer', { authorization: `Bearer ${METRICS_TOKEN}` }]
]

t.test(
  'OPENAI_BASE_URL=http://10.1.2.3:4567: anonymous callers see "openai-compatible", admins the address',
  async t => {
    const app = await build(t, { env: ENV })
    for (const [who, headers] of narrowCredentials) {
      const info = await as(app, '/api', headers)
      t.equal(info.statusCode, 200, who)
      t.equal(info.json().features.llmProvider, 'openai-compatible', `${who}: /api names the kind`)
      t.notMatch(info.body, LLM_HOST, `${who}: /api has no host`)
      t.notMatch(info.body, LLM_PORT, `${who}: /api has no port`)
      const health = await as(app, '/api/health', headers)
      t.equal(health.statusCode, 200, who)
      t.match(health.headers.vary, /x-api-key/, `${who}: shared caches keep the views apart`)
      t.notMatch(health.body, LLM_HOST, `${who}: /api/health has no host`)
      t.notMatch(health.body, LLM_PORT, `${who}: /api/health has no port`)
      t.match(
        health.json().components,
        {
          llm: { status: 'healthy', message: 'openai-compatible provider healthy' },
          database: { status: 'healthy', message: 'pglite reachable' },
          redis: { status: 'healthy', message: 'not configured: in-memory stores in use' },
          agents: {
            status: 'healthy',
            message: 'travel healthy, content healthy, innovation healthy',
            details: { travel: { status: 'healthy' } }
          }
        },
        `${who}: kinds and statuses`
      )
    }
    for (const [who, headers] of wideCredentials) {
      t.equal(
        (await as(app, '/api/health', headers)).headers['cache-control'],
        'private, no-store',
        `${who}: the detailed view is not cached`
      )
      t.match(
        (await as(app, '/api', headers)).json().features.llmProvider,
        `${LLM_HOST}:${LLM_PORT}`,
        `${who}: /api has the address`
      )
      t.match(
        (await as(app, '/api/health', headers)).json().components.llm.message,
        `${LLM_HOST}:${LLM_PORT}`,
        `${who}: /api/health has it`
      )
    }
  }
)

t.test('driver messages and paths of failing components reach admins only', async t => {
  const app = await build(t, {
    env: MANAGEMENT_ENV,
    before: (app) => {
      // Stand-ins for a driver error and a component that reports a socket path.
      app.health.register(
        'database',
        async () => {
          throw new Error('connect ECONNREFUSED 10.9.8.7:5432')
        },
        { critical: true }
      )
      app.health.register('mystery', async () => ({
        status: 'degraded',
        message: 'socket /var/run/mystery.sock is slow',
        details: { socket: '/var/run/mystery.sock' }
      }))
    }
  })
  const anonymous = await as(app, '/api/health')
  t.equal(anonymous.statusCode, 503, 'the status code is the same for everyone')
  t.match(anonymous.json().components, {
    database: { status: 'unhealthy', message: 'PGlite unhealthy' },
    mystery: { status: 'degraded', message: 'degraded' }
  })
  t.notOk('details' in anonymous.json().components.mystery, 'no details of an unknown component')
  for (const leak of ['10.9.8.7', '5432', 'ECONNREFUSED', '/var/run']) { t.notMatch(anonymous.body, leak, `anonymous: no ${leak}`) }
  const admin = (await as(app, '/api/health', { 'x-api-key': ADMIN_KEY })).json()
  t.equal(admin.components.database.message, 'connect ECONNREFUSED 10.9.8.7:5432')
  t.same(admin.components.mystery.details, { socket: '/var/run/mystery.sock' })
})

t.test('an unreachable Redis: its address stays out of the anonymous report', async t => {
  const port = String(await freePort())
  const app = await build(t, {
    env: { ...MANAGEMENT_ENV, REDIS_URL: `redis://127.0.0.1:${port}`, REDIS_CONNECT_TIMEOUT_MS: '200' }
  })
  const anonymous = await as(app, '/api/health')
  t.equal(anonymous.json().components.redis.status, 'unhealthy')
  t.notMatch(anonymous.body, `:${port}`, 'no Redis port')
  t.notMatch(anonymous.body, '127.0.0.1', 'no Redis host')
  t.equal((await as(app, '/api', {})).json().features.redis, true, 'the kind is still said: Redis is configured')
})

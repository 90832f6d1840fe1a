// Every route that needs the database, against a private PostgreSQL (test/faults/support.ts) that is
// stopped, then frozen (SIGSTOP): each answers 503 AMK_DATABASE_UNAVAILABLE with Retry-After in the one
// error shape, within about a second, never naming an internal address or the driver's words; routes
// that do not need it go on. After the outage the same process serves them again (no restart), and the
// failed logins of the outage are counted against nobody: the right password from the same IP is 200.
import t from 'tap'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { build } from '../support.js'
import { needsServers, startPostgres, TRIP } from './support.js'

const ADMIN_KEY = 'amk_fault_routes_admin_0123456789abcdef'
const EMAIL = 'ops@example.com'
const PASSWORD = 'correct horse battery staple'
const CREDENTIALS = { email: EMAIL, password: PASSWORD }
const BLOG = { topic: 'Budget travel in Vietnam', length: 600 }
const FLIGHTS = { from: 'Cairo', to: 'Paris', date: '2030-05-01' }

interface Call {
  label: string
  method: 'GET' | 'POST' | 'DELETE'
  url: string
  headers: Record<string, string>
  payload?: object
}
const WORKFLOW = { workflowName: 'trip-package', input: TRIP }

/** The DB-backed routes, called with an admin API key stored in the database and with a user's token. */
function dbRoutes (key: string, keyId: string, token: string, runId: string): Call[] {
  const byKey = { 'x-api-key': key, 'cache-control': 'no-cache' }
  const byToken = { authorization: `Bearer ${token}` }
  return [
    { label: 'login', method: 'POST', url: '/api/auth/login', headers: {}, payload: CREDENTIALS },
    { label: 'token refresh', method: 'POST', url: '/api/auth/refresh', headers: byToken },
    {
      label: 'create user',
      method: 'POST',
      url: '/api/auth/users',
      headers: byToken,
      payload: { email: 'new@example.com', password: 'another long password' }
    },
    { label: 'create API key', method: 'POST', url: '/api/auth/keys', headers: byToken, payload: { name: 'ci' } },
    { label: 'list API keys', method: 'GET', url: '/api/auth/keys', headers: byToken },
    { label: 'revoke API key', method: 'DELETE', url: `/api/auth/keys/${keyId}`, headers: byToken },
    { label: 'usage (own)', method: 'GET', url: '/api/usage/me', headers: byToken },
    { label: 'usage (all)', method: 'GET', url: '/api/usage', headers: byToken },
    { label: 'run read', method: 'GET', url: `/api/coordinator/runs/${runId}`, headers: byToken },
    { label: 'run cancel', method: 'POST', url: `/api/coordinator/runs/${runId}/cancel`, headers: byToken },
    { label: 'workflow start', method: 'POST', url: '/api/coordinator/workflow', headers: byToken, payload: WORKFLOW },
    { label: 'coordinator stats', method: 'GET', url: '/api/coordinator/stats', headers: byToken },
    { label: 'stream ticket (stored key)', method: 'POST', url: '/api/stream/tickets', headers: byKey },
    { label: 'stream open (stored key)', method: 'POST', url: '/api/stream/blog', headers: byKey, payload: BLOG },
    { label: 'invoke (stored key)', method: 'POST', url: '/api/agents/travel/searchFlights', headers: byKey, payload: FLIGHTS }
  ]
}

const send = (app: FastifyInstance, call: Call) =>
  app.inject({ method: call.method, url: call.url, headers: call.headers, payload: call.payload })

const TITLE = 'every DB-backed route: 503 AMK_DATABASE_UNAVAILABLE with Retry-After while the database is stopped or frozen'

t.test(TITLE, { skip: needsServers() }, async t => {
  const pg = await startPostgres()
  t.teardown(() => pg.close())
  const app = await build(t, {
    db: null,
    env: {
      DATABASE_URL: pg.url,
      VALID_API_KEYS: `${ADMIN_KEY}:admin`,
      API_KEY_CACHE_TTL_MS: '0', // every request with a stored key asks the database
      JWT_SECRET: 'fault-routes-secret-0123456789abcdef0123456789'
    }
  })
  const admin = { 'x-api-key': ADMIN_KEY }
  const post = (url: string, payload: object) => app.inject({ method: 'POST', url, headers: admin, payload })
  t.equal((await post('/api/auth/users', { ...CREDENTIALS, role: 'admin' })).statusCode, 201, 'a user')
  const login = () => app.inject({ method: 'POST', url: '/api/auth/login', payload: CREDENTIALS })
  const token: string = (await login()).json().token
  const created = (await post('/api/auth/keys', { name: 'stored', role: 'admin' })).json()
  const spare = (await post('/api/auth/keys', { name: 'spare', role: 'user' })).json()
  const run = (await post('/api/coordinator/workflow', WORKFLOW)).json()
  const calls = dbRoutes(created.key, spare.id, token, run.runId)
  const baseline = await Promise.all(calls.map(call => send(app, call)))
  t.same(
    baseline.filter(res => res.statusCode >= 400 && res.statusCode !== 409).map(res => res.body),
    [],
    'with the database up, every one of them is served (cancelling the finished run: 409)'
  )
  const secret = [String(pg.port), '127.0.0.1', 'ECONNREFUSED', 'timeout exceeded', 'terminat', 'Connection']

  const check = (label: string, call: Call, res: LightMyRequestResponse, ms: number) => {
    const what = `${label}, ${call.label}`
    t.equal(res.statusCode, 503, `${what}: 503 (${ms} ms)`)
    t.match(res.headers['content-type'], /^application\/json/, `${what}: a JSON error, no stream opened`)
    t.match(
      res.json(),
      {
        statusCode: 503,
        code: 'AMK_DATABASE_UNAVAILABLE',
        error: 'Service Unavailable',
        message: String,
        requestId: String
      },
      `${what}: the one error shape`
    )
    t.ok(Number(res.headers['retry-after']) > 0, `${what}: Retry-After`)
    for (const word of secret) t.notOk(res.body.includes(word), `${what}: no "${word}" in the answer`)
  }
  const figures: Record<string, number> = {}
  for (const fault of ['stopped', 'frozen'] as const) {
    if (fault === 'stopped') await pg.stop('clean')
    else pg.freeze()
    let slowest = 0
    for (const call of calls) {
      const started = Date.now()
      const res = await send(app, call)
      const ms = Date.now() - started
      slowest = Math.max(slowest, ms)
      check(fault, call, res, ms)
    }
    figures[fault] = slowest
    t.ok(slowest < 2000, `${fault}: the slowest 503 came in ${slowest} ms (about DATABASE_CONNECT_TIMEOUT_MS)`)
    const ticket = await app.inject({
      method: 'POST',
      url: '/api/stream/tickets',
      headers: { authorization: `Bearer ${token}` }
    })
    t.equal(ticket.statusCode, 201, `${fault}: a token caller still gets a stream ticket (no database needed)`)
    if (fault === 'stopped') await pg.start()
    else pg.thaw()
    const back = Date.now()
    while ((await login()).statusCode !== 200) {
      if (Date.now() - back > 20_000) throw new Error('no recovery within 20 s')
      await new Promise(resolve => setTimeout(resolve, 50))
    }
    figures[`${fault} recovery`] = Date.now() - back
  }
  const after = await login()
  t.equal(after.statusCode, 200, 'the right password after the outage: 200, not 429 (outage logins count against nobody)')
  const again = await Promise.all(calls.filter(call => call.label !== 'revoke API key').map(call => send(app, call)))
  t.same(again.filter(res => res.statusCode >= 500).map(res => res.body), [], 'every route serves again, no restart')
  t.comment(`slowest 503: stopped ${figures.stopped} ms, frozen ${figures.frozen} ms; ` +
    `recovered ${figures['stopped recovery']} ms after the restart, ${figures['frozen recovery']} ms after SIGCONT; ` +
    `${calls.length} routes checked`)
})

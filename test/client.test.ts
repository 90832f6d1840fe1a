// The generated TypeScript client (client/): its types are what `npm run client` generates from the
// served /openapi.json today (a stale file fails here), and it works against a listening server —
// login, typed invoke, the one error shape for bad input and missing credentials, path parameters.
// Compile-time checks are the @ts-expect-error lines: `npm test` typechecks first, so they fail if the
// generated types stopped rejecting a wrong call.
import t from 'tap'
import { readFile } from 'node:fs/promises'
import { createAmrikyyClient } from '../client/index.js'
import { clientSchema, SCHEMA_FILE } from '../scripts/generate-client.js'
import { build } from './support.js'

const KEY = 'amk_client_test_key_0123456789abcdef'
const ADMIN = { email: 'admin@example.com', password: 'correct horse battery' }

t.test('client/schema.d.ts is what npm run client generates from the served document', async t => {
  const committed = await readFile(SCHEMA_FILE, 'utf8')
  t.ok(
    committed === (await clientSchema()),
    'client/schema.d.ts is up to date (run `npm run client` after changing a route schema)'
  )
})

t.test('the client against a listening server', async t => {
  const app = await build(t, {
    env: {
      VALID_API_KEYS: `${KEY}:user`,
      JWT_SECRET: 'c'.repeat(48),
      ADMIN_EMAIL: ADMIN.email,
      ADMIN_PASSWORD: ADMIN.password
    }
  })
  const baseUrl = await app.listen({ port: 0, host: '127.0.0.1' })

  const anonymous = createAmrikyyClient({ baseUrl })
  const refused = await anonymous.POST('/api/agents/travel/searchFlights', {
    body: { from: 'Cairo', to: 'Paris', date: '2027-03-01' }
  })
  t.equal(refused.response.status, 401)
  t.equal(refused.error?.code, 'AMK_UNAUTHORIZED', 'the error shape, typed')
  t.equal(refused.error?.requestId, refused.response.headers.get('x-request-id'))

  const login = await anonymous.POST('/api/auth/login', { body: ADMIN })
  t.equal(login.response.status, 200)
  const token = login.data?.token
  t.type(token, 'string')
  const admin = createAmrikyyClient({ baseUrl, token })
  const me = await admin.GET('/api/auth/me')
  t.equal(me.data?.role, 'admin', 'a bearer token from login')

  const client = createAmrikyyClient({ baseUrl, apiKey: KEY })
  const flights = await client.POST('/api/agents/travel/searchFlights', {
    body: { from: 'Cairo', to: 'Paris', date: '2027-03-01', passengers: 2 }
  })
  t.equal(flights.response.status, 200)
  t.equal(flights.data?.method, 'searchFlights')
  t.ok(flights.data?.data.flights.length, 'typed output')
  t.type(flights.data?.usage.inputTokens, 'number')

  // @ts-expect-error -- `to` is required: the generated types refuse the call before it is sent
  const invalid = await client.POST('/api/agents/travel/searchFlights', { body: { from: 'Cairo', date: '2027-03-01' } })
  t.equal(invalid.response.status, 400)
  t.equal(invalid.error?.code, 'AMK_VALIDATION')

  const run = await client.POST('/api/coordinator/workflow', {
    body: {
      workflowName: 'trip-campaign',
      input: { destination: 'Cairo', duration: 3, platforms: ['twitter'], postCount: 2 }
    }
  })
  t.equal(run.data?.status, 'completed')
  const runId = run.data?.runId ?? ''
  const stored = await client.GET('/api/coordinator/runs/{runId}', { params: { path: { runId } } })
  t.equal(stored.data?.runId, runId, 'path parameters')
  t.same(stored.data?.steps.map(step => step.status), ['completed', 'completed', 'completed'])
  const other = await admin.POST('/api/coordinator/runs/{runId}/cancel', { params: { path: { runId } } })
  t.equal(other.response.status, 409, 'a finished run cannot be cancelled')
  t.equal(other.error?.code, 'AMK_CONFLICT')
  const missing = await client.GET('/api/coordinator/runs/{runId}', {
    params: { path: { runId: '00000000-0000-4000-8000-000000000000' } }
  })
  t.equal(missing.response.status, 404)
  t.equal(missing.error?.code, 'AMK_NOT_FOUND')
})

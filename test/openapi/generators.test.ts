// Third-party SDK generators on the served /openapi.json: @hey-api/openapi-ts, swagger-typescript-api and
// openapi-typescript-codegen generate clients into a temporary directory, and a small program using them compiles
// with tsc --strict. The program relies on what the spec promises: named request and response types, `.code` on
// every error type (health 503 bodies included), named enums (openapi-typescript-codegen names an inline enum after
// its property, and `export enum class` is not TypeScript, so the cabin class is the CabinClass component), and
// per-scheme auth (a JWT goes to Authorization only). The hey-api client then runs against a listening server with
// plain-string auth, which sends the one string to every scheme (Bearer and x-api-key): a JWT and an API key are
// both accepted that way.
import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { build } from '../support.js'
import { JWT_SECRET } from '../auth/support.js'

const run = promisify(execFile)
const ROOT = new URL('../../', import.meta.url).pathname
const bin = (name: string) => join(ROOT, 'node_modules', '.bin', name)
const OTC_BIN = join(ROOT, 'node_modules', 'openapi-typescript-codegen', 'bin', 'index.js')

const TSCONFIG = {
  compilerOptions: {
    strict: true,
    noEmit: true,
    target: 'ES2022',
    module: 'ESNext',
    moduleResolution: 'Bundler',
    lib: ['ES2022', 'DOM', 'DOM.Iterable'],
    skipLibCheck: true,
    types: []
  },
  include: ['*.ts', 'hey/**/*.ts', 'sta/**/*.ts', 'otc/**/*.ts']
}

const HEY_USAGE = `import { createClient } from './hey/client/index'
import { getHealth, runPredefinedWorkflow, travelSearchFlights } from './hey/sdk.gen'
import type { LoginRequest, TravelSearchFlightsResponse } from './hey/types.gen'

// Auth per scheme: the token goes to the scheme it belongs to, never to x-api-key as well.
const client = createClient({ baseUrl: 'http://127.0.0.1:1', auth: auth => auth.scheme === 'bearer' ? 'jwt' : undefined })
export const credentials: LoginRequest = { email: 'a@example.com', password: 'secret' }

export async function heyUsage (): Promise<string> {
  const health = await getHealth({ client })
  if (health.error) return health.error.code + health.error.message
  const flights = await travelSearchFlights({ client, body: { from: 'Cairo', to: 'Paris', date: '2030-01-01' } })
  if (flights.error) return flights.error.code
  const reply: TravelSearchFlightsResponse | undefined = flights.data
  const trip = await runPredefinedWorkflow({ client, body: { workflowName: 'trip-package', input: {} } })
  return (reply?.usage.model ?? '') + (trip.error?.code ?? '')
}
`

const STA_USAGE = `import { Api } from './sta/api'
import type { TravelSearchFlightsResponse } from './sta/api'

const api = new Api({ baseUrl: 'http://127.0.0.1:1' })

export async function staUsage (): Promise<string> {
  // A failed request rejects with the response; its error type has \`code\` whatever the status.
  const health = await api.api.getHealth().catch((response: Awaited<ReturnType<typeof api.api.getHealth>>) => response)
  const flights = await api.api.travelSearchFlights({ from: 'Cairo', to: 'Paris', date: '2030-01-01' })
  const reply: TravelSearchFlightsResponse = flights.data
  return reply.usage.model + (health.ok ? '' : health.error.code)
}
`

const OTC_USAGE = `import { AgentsService, CabinClass, OpenAPI } from './otc'
import type { TravelSearchFlightsResponse } from './otc'

export async function otcUsage (): Promise<string> {
  OpenAPI.BASE = 'http://127.0.0.1:1'
  const body = { from: 'Cairo', to: 'Paris', date: '2030-01-01', class: CabinClass.BUSINESS }
  const reply: TravelSearchFlightsResponse = await AgentsService.travelSearchFlights(body)
  return reply.usage.model
}
`

t.test(
  'hey-api, swagger-typescript-api and openapi-typescript-codegen clients of the served spec compile with --strict',
  async t => {
    const app = await build(t)
    const dir = await mkdtemp(join(tmpdir(), 'amk-openapi-sdk-'))
    t.teardown(() => rm(dir, { recursive: true, force: true }))
    const spec = join(dir, 'openapi.json')
    await writeFile(spec, (await app.inject('/openapi.json')).body)

    const options = { cwd: dir, env: { ...process.env, NO_COLOR: '1' }, maxBuffer: 64 * 1024 * 1024 }
    await Promise.all([
      run(bin('openapi-ts'), ['-i', spec, '-o', join(dir, 'hey')], options),
      run(
        bin('swagger-typescript-api'),
        ['generate', '--path', spec, '--output', join(dir, 'sta'), '--name', 'api.ts'],
        options
      ),
      // Its bin is named `openapi`, as is @redocly/cli's: which one npm links there is not defined, so run it by path.
      run(process.execPath, [OTC_BIN, '--input', spec, '--output', join(dir, 'otc'), '--client', 'fetch'], options)
    ])
    await writeFile(join(dir, 'tsconfig.json'), JSON.stringify(TSCONFIG, null, 2))
    await writeFile(join(dir, 'hey-usage.ts'), HEY_USAGE)
    await writeFile(join(dir, 'sta-usage.ts'), STA_USAGE)
    await writeFile(join(dir, 'otc-usage.ts'), OTC_USAGE)

    const compiled = await run(bin('tsc'), ['-p', join(dir, 'tsconfig.json')], options).then(
      () => '',
      (error: { stdout?: string }) => error.stdout ?? String(error)
    )
    t.equal(compiled, '', 'tsc --strict reports no errors')

    t.test('the generated hey-api client runs with plain-string auth (one string for every scheme)', async t => {
      const KEY = 'generator-test-key-0123456789:user'
      const server = await build(t, { env: { JWT_SECRET, VALID_API_KEYS: KEY } })
      const baseUrl = await server.listen({ port: 0, host: '127.0.0.1' })
      await writeFile(join(dir, 'hey-run.ts'), HEY_RUN)
      const { searchWith } = (await import(join(dir, 'hey-run.ts'))) as {
        searchWith(baseUrl: string, auth: string): Promise<Sent>
      }
      const jwt = server.auth.issueToken({ sub: 'u-1', email: 'u@example.com', role: 'user' })
      const withJwt = await searchWith(baseUrl, jwt)
      t.same(withJwt.sent, { bearer: true, apiKey: true }, 'hey-api sends the JWT as Bearer and as x-api-key')
      t.equal(withJwt.status, 200, 'the JWT is accepted, not looked up as an API key')
      t.equal((await searchWith(baseUrl, KEY.split(':')[0])).status, 200, 'an API key sent the same way is accepted')
      t.equal((await searchWith(baseUrl, 'not-a-key-and-not-a-jwt')).status, 401, 'a wrong string is refused')
    })
  }
)

interface Sent { status: number, sent: { bearer: boolean, apiKey: boolean } }

const HEY_RUN = `import { createClient } from './hey/client/index'
import { travelSearchFlights } from './hey/sdk.gen'

export async function searchWith (baseUrl: string, auth: string) {
  const sent = { bearer: false, apiKey: false }
  const client = createClient({ baseUrl, auth })
  client.interceptors.request.use((request: Request) => {
    sent.bearer = request.headers.get('authorization') === 'Bearer ' + auth
    sent.apiKey = request.headers.get('x-api-key') === auth
    return request
  })
  const result = await travelSearchFlights({ client, body: { from: 'Cairo', to: 'Paris', date: '2030-01-01' } })
  return { status: result.response.status, sent }
}
`

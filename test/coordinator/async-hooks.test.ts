// A workflow switches on no async hook for the rest of the process. On Node 20 an AsyncLocalStorage does
// (promise hooks: a cost on every promise of every request once the first workflow ran; issue 16), so a
// failed step's spend travels on the agent service's error instead. Checked in a child process: tap itself
// runs its tests under async hooks.
import t from 'tap'
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

const SCRIPT = `
import Fastify from 'fastify'
import { executionAsyncId } from 'node:async_hooks'
import app, { serverOptions } from './src/app.js'
import { loadConfig } from './src/config.js'
// Without promise hooks a then-callback runs in its surrounding resource's id, so two in a row see the same one.
const hooked = async () =>
  (await Promise.resolve().then(() => executionAsyncId())) !== (await Promise.resolve().then(() => executionAsyncId()))
const key = 'amk_async_hooks_key_0123456789abcdef'
const config = loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'silent', DATA_DIR: 'memory://', VALID_API_KEYS: key + ':user' })
const server = Fastify(serverOptions(config, false))
await server.register(app, { config })
await server.ready()
const before = await hooked()
const run = await server.inject({
  method: 'POST',
  url: '/api/coordinator/workflow',
  headers: { 'x-api-key': key },
  payload: {
    workflowName: 'trip-package',
    input: { origin: 'Cairo', destination: 'Lisbon', departureDate: '2030-05-01', returnDate: '2030-05-05', travelers: 1 }
  }
})
const after = await hooked()
await server.close()
process.stdout.write(JSON.stringify({ before, status: run.statusCode, completed: run.json().status, after }))
`

t.test('a workflow run leaves promise hooks off', async t => {
  const out = await new Promise<string>((resolve, reject) => {
    execFile(
      process.execPath,
      ['--import=tsx', '--input-type=module', '-e', SCRIPT],
      { cwd: ROOT, timeout: 60_000 },
      (error, stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout))
    )
  })
  t.same(JSON.parse(out), { before: false, status: 200, completed: 'completed', after: false })
})

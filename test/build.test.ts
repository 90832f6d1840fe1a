// `npm run build` (tsc, then the SQL migrations into dist/) produces an app that runs with plain node:
// `node dist/server.js` is the Docker image's start command.
import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startServer } from './child-server.js'

const ROOT = new URL('..', import.meta.url).pathname
// A full tsc build takes a minute or more on a loaded 2-core machine.
t.setTimeout(400_000)

t.test('npm run build output runs: node dist/server.js (the Docker command) answers the probes', async t => {
  const built = spawn('npm', ['run', 'build'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  let log = ''
  built.stdout.on('data', chunk => { log += chunk })
  built.stderr.on('data', chunk => { log += chunk })
  const code = await new Promise<number | null>(resolve => built.on('close', resolve))
  t.equal(code, 0, `npm run build succeeds\n${log.slice(-3000)}`)
  if (code !== 0) return
  const sql = (await readdir(new URL('dist/store/migrations/', `file://${ROOT}`))).filter(name => name.endsWith('.sql'))
  const sources = (await readdir(new URL('src/store/migrations/', `file://${ROOT}`))).filter(name =>
    name.endsWith('.sql')
  )
  t.same(sql.sort(), sources.sort(), 'the SQL migrations are copied next to the compiled runner')

  const dir = await mkdtemp(join(tmpdir(), 'amk-dist-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const server = await startServer(t, ['dist/server.js'], { DATA_DIR: join(dir, 'data') })
  t.match(server.output(), '"msg":"database created"')
  const live = await fetch(`http://127.0.0.1:${server.port}/api/health/live`)
  t.equal(live.status, 200)
  t.equal(((await live.json()) as { status: string }).status, 'alive')
  t.equal((await fetch(`http://127.0.0.1:${server.port}/api/health/ready`)).status, 200)
  t.equal((await server.stop()).code, 0)
})

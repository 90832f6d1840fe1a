// One process per embedded database (DATA_DIR): a second server on the same directory refuses to start
// and says why and what to use instead; while the first runs, opening its directory fails too; once it
// is killed (its lock left behind with a dead pid), the directory is taken over. memory:// needs no lock.
import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startServer } from '../child-server.js'
import { freePort } from '../support.js'
import { openDatabase } from '../../src/store/database.js'
import { LOCK_FILE } from '../../src/store/data-dir-lock.js'

// A cold start of PGlite plus the TypeScript loader is slow on a loaded 2-core machine.
t.setTimeout(240_000)
const ROOT = new URL('../..', import.meta.url).pathname

/** Runs src/server.ts until it exits; its exit code and output. */
async function runToExit (env: Record<string, string>): Promise<{ code: number | null, output: string }> {
  const child = spawn(process.execPath, ['--import=tsx', 'src/server.ts'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', PORT: String(await freePort()), ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  child.stdout.on('data', chunk => { output += chunk })
  child.stderr.on('data', chunk => { output += chunk })
  const timer = setTimeout(() => child.kill('SIGKILL'), 120_000)
  const code = await new Promise<number | null>(resolve => child.once('exit', resolve))
  clearTimeout(timer)
  return { code, output }
}

t.test('two processes on one DATA_DIR: the second refuses; a dead owner\'s lock is taken over', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'amk-lock-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const dataDir = join(dir, 'data')
  const env = { DATA_DIR: dataDir, LOG_LEVEL: 'warn' }

  const first = await startServer(t, ['--import=tsx', 'src/server.ts'], env)
  t.equal(
    (await readFile(join(dataDir, LOCK_FILE), 'utf8')).trim(),
    String(first.child.pid),
    'the lock names the owner'
  )

  const second = await runToExit(env)
  t.equal(second.code, 1, 'the second server exits with 1')
  t.match(second.output, `DATA_DIR ${dataDir} is in use by another process (pid ${first.child.pid})`)
  t.match(second.output, 'DATABASE_URL', 'and says what to use instead')
  t.notMatch(second.output, 'listening on')
  await t.rejects(openDatabase({ dataDir }), { name: 'DataDirLockedError' }, 'this process cannot open it either')
  t.equal((await fetch(`http://127.0.0.1:${first.port}/api/health/ready`)).status, 200, 'the first one keeps serving')

  first.child.kill('SIGKILL')
  await new Promise(resolve => first.child.once('exit', resolve))
  const reopened = await openDatabase({ dataDir })
  t.equal(
    (await readFile(join(dataDir, LOCK_FILE), 'utf8')).trim(),
    String(process.pid),
    "the dead owner's lock is taken over"
  )
  t.ok((await reopened.query('SELECT version FROM schema_migrations')).length > 0, 'with the data the first one wrote')
  await reopened.close()
  await t.rejects(readFile(join(dataDir, LOCK_FILE)), { code: 'ENOENT' }, 'close releases the lock')
})

t.test('a lock whose pid is not a running node process is stale; memory:// takes no lock', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'amk-lock-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await mkdir(join(dir, 'data'))
  await writeFile(join(dir, 'data', LOCK_FILE), '1\n') // pid 1 exists but is not node (or is this process)
  const db = await openDatabase({ dataDir: join(dir, 'data') })
  t.equal((await readFile(join(dir, 'data', LOCK_FILE), 'utf8')).trim(), String(process.pid))
  await db.close()

  const a = await openDatabase({ dataDir: 'memory://' })
  const b = await openDatabase({ dataDir: 'memory://' })
  t.same(await b.query('SELECT 1 AS one'), [{ one: 1 }])
  await Promise.all([a.close(), b.close()])
})

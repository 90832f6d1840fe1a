// The container on a real Docker engine (scripts/docker-engine.sh: a private dockerd and the local base image):
// the README's "Deployment → Docker" commands build the Dockerfile and run the image against this machine's
// Redis and PostgreSQL (--network=host). Checks readiness, /api/health components, uid 1000, read-only code, no
// dev tooling, the Node major CI tests on, HEALTHCHECK healthy, SIGTERM → exit 0 (compose.yaml: compose.test.ts).
// Uses the engine AMK_DOCKER_HOST names when set (.ci/run shares one with compose.test.ts), else starts its own.
// Always runs under CI=true; elsewhere only with AMK_DOCKER_TEST=on and an engine. Prints its figures.
import t from 'tap'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { commandsOf } from '../docs-commands.js'
import { freePort, which } from '../support.js'
import { run, until } from './support.js'

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
const DATABASE_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
const NAME = `amk-docker-test-${process.pid}`
const ci = process.env.CI === 'true'

function skipReason (): string | false {
  if (process.env.AMK_DOCKER_TEST === 'off') { return 'SKIPPED: AMK_DOCKER_TEST=off (CI runs this file on its own after the suite)' }
  if (ci) return false
  // Minutes of vfs building are more than tap's per-file timeout in a plain `npm test`: opt in by hand.
  if (process.env.AMK_DOCKER_TEST !== 'on') { return 'SKIPPED: the container test builds the image for minutes; run it with AMK_DOCKER_TEST=on npx tap --timeout=1500 test/deploy/docker.test.ts (CI runs it after the suite)' }
  if (process.env.AMK_DOCKER_HOST === undefined && process.getuid?.() !== 0) { return 'SKIPPED: starting a Docker engine needs root' }
  const missing = ['dockerd', 'docker', 'debootstrap'].filter(tool => !which(tool))
  return missing.length > 0
    ? `SKIPPED: no Docker engine can be started here (missing ${missing.join(', ')}; apt-get install docker.io debootstrap)`
    : false
}

interface HealthBody { components?: Record<string, { status: string, message: string } | undefined> }
const skip = skipReason()
if (skip) console.log(`# ${skip}`)

t.test('the image builds on a real Docker engine and runs as documented', { skip, timeout: 1_500_000 }, async t => {
  let host = process.env.AMK_DOCKER_HOST ?? ''
  if (host === '') {
    const dir = await mkdtemp(join(tmpdir(), 'amk-dk-'))
    const engine = await run('bash', ['scripts/docker-engine.sh', 'start', dir], {}, 600_000)
    t.teardown(() => run('bash', ['scripts/docker-engine.sh', 'stop', dir]).then(() => {}))
    t.equal(engine.code, 0, `engine started ${engine.stderr.slice(-2000)}`)
    if (engine.code !== 0) return
    host = engine.stdout.split('\n').at(-1) ?? ''
  }
  const env = { DOCKER_HOST: host, DOCKER_BUILDKIT: '0' }
  const docker = (args: string[], timeout?: number) => run('docker', args, env, timeout)

  const [build, start] = commandsOf('README.md', '### Docker')
  t.match(
    build,
    /^docker build .*--network=host .*-t amrikyy-agent-api \.$/,
    'README: the build command (host network: no bridge here)'
  )
  t.match(start, /^docker run .*--network=host .*amrikyy-agent-api$/, 'README: the run command')
  let started = Date.now()
  const built = await run('bash', ['-c', build], env, 1_200_000)
  const buildSeconds = (Date.now() - started) / 1000
  t.equal(built.code, 0, `docker build ${built.code === 0 ? '' : (built.stdout + built.stderr).slice(-3000)}`)
  if (built.code !== 0) return

  const inImage = (command: string) =>
    docker(['run', '--rm', '--network=host', '--entrypoint', 'sh', 'amrikyy-agent-api', '-c', command])
  const nodeVersion = (await inImage('node --version')).stdout
  t.equal(
    nodeVersion.split('.')[0],
    process.version.split('.')[0],
    `the image runs the Node major CI tests on (${nodeVersion})`
  )
  const devTools = await inImage(
    'ls -d node_modules/tsx node_modules/esbuild node_modules/@esbuild node_modules/typescript node_modules/tap 2>/dev/null; ls node_modules | wc -l'
  )
  t.same(devTools.stdout.split('\n').slice(0, -1), [], 'no tsx, esbuild, TypeScript or tap in the runtime image')
  const size = (await docker(['image', 'inspect', '-f', '{{.Size}}', 'amrikyy-agent-api'])).stdout
  const newDatabase = await inImage('node --input-type=module -e "' +
    "const { openDatabase } = await import('./dist/store/database.js'); " +
    "const { loadMigrations } = await import('./dist/store/migrate.js'); " +
    "const db = await openDatabase({ dataDir: '/app/data/probe', migrations: await loadMigrations() }); " +
    'console.log(db.created.from); await db.close()"')
  t.equal(newDatabase.stdout, 'schema snapshot',
    `a new PGlite database comes from the snapshot the image holds (its code is read-only) ${newDatabase.stderr}`)

  const port = await freePort()
  const prefix = `amk-docker-${process.pid}:`
  const runCommand = start
    .replace(/^docker run /, `docker run --name ${NAME} -e PORT=${port} -e REDIS_KEY_PREFIX=${prefix} `)
    .replace('redis://127.0.0.1:6379', REDIS_URL)
    .replace('postgres://postgres@127.0.0.1:5432/postgres', DATABASE_URL)
  started = Date.now()
  const ran = await run('bash', ['-c', runCommand], env)
  t.equal(ran.code, 0, `docker run ${ran.stderr}`)
  t.teardown(() => docker(['rm', '-f', NAME]).then(() => {}))
  const base = `http://127.0.0.1:${port}`
  await until(
    'readiness 200',
    async () => ((await fetch(`${base}/api/health/ready`)).status === 200 ? true : undefined),
    60_000
  ).catch(async error => {
    t.fail(`${error.message}\n${(await docker(['logs', NAME])).stderr.slice(-3000)}`)
  })
  const readySeconds = (Date.now() - started) / 1000

  const health = await fetch(`${base}/api/health`)
  const body: HealthBody = JSON.parse(await health.text())
  t.equal(health.status, 200, '/api/health 200')
  t.equal(body.components?.redis?.status, 'healthy', 'talks to Redis')
  t.equal(body.components?.database?.status, 'healthy', 'talks to the database')
  t.match(body.components?.database?.message, /postgres/i, '… which is PostgreSQL, not the embedded PGlite')

  t.equal((await docker(['exec', NAME, 'id', '-u'])).stdout, '1000', 'runs as uid 1000')
  t.equal(
    (await docker(['exec', NAME, 'stat', '-c', '%u', '/proc/1'])).stdout,
    '1000',
    'the server process (PID 1) too'
  )
  t.not((await docker(['exec', NAME, 'touch', '/app/dist/server.js'])).code, 0, 'the code is read-only')
  t.not((await docker(['exec', NAME, 'touch', '/app/node_modules/probe'])).code, 0, 'the dependencies are read-only')
  t.equal((await docker(['exec', NAME, 'touch', '/app/data/probe'])).code, 0, 'the data directory is writable')

  started = Date.now()
  const healthy = await until('HEALTHCHECK healthy', async () => {
    const status = (await docker(['inspect', '-f', '{{.State.Health.Status}}', NAME])).stdout
    return status === 'healthy' ? status : undefined
  }, 120_000).catch(() => 'not healthy')
  t.equal(healthy, 'healthy', 'HEALTHCHECK reports healthy')
  const healthySeconds = (Date.now() - started) / 1000

  started = Date.now()
  await docker(['kill', '--signal=SIGTERM', NAME])
  const exit = await docker(['wait', NAME], 60_000)
  const stopSeconds = (Date.now() - started) / 1000
  t.equal(exit.stdout, '0', 'SIGTERM → exit 0')
  t.ok(stopSeconds < 20, `stopped within 20 s (${stopSeconds} s)`)

  console.log(
    `# docker: build ${buildSeconds.toFixed(0)} s, image ${(Number(size) / 1e6).toFixed(0)} MB, ${nodeVersion}, ${devTools.stdout.split('\n').at(-1)} production packages, ready ${readySeconds.toFixed(1)} s after run, healthy ${healthySeconds.toFixed(1)} s later, SIGTERM → exit ${exit.stdout} in ${stopSeconds.toFixed(1)} s`
  )
})

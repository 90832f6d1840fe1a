// compose.yaml on a real Docker engine with the compose tool (docker-compose, Compose v1): the README's up command
// brings up the API with Redis and PostgreSQL; the API reports both healthy, an admin logs in, and `stop` then
// `down -v` end the stack cleanly. The engine is scripts/docker-engine.sh's (or the one AMK_DOCKER_HOST names, as
// .ci/run shares it with test/deploy/docker.test.ts). redis:7 and postgres:16 cannot be pulled here:
// scripts/docker-standins.sh builds amk-standin/redis:7 and amk-standin/postgres:15 (Debian has no PostgreSQL 16),
// and an override file swaps them in, with a host-network build (the engine has no default bridge). The stack
// itself runs on compose's own network, as compose.yaml has it. Always runs under CI=true; elsewhere only with
// AMK_DOCKER_TEST=on and an engine. Prints its figures as "# compose: …".
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { commandsOf } from '../docs-commands.js'
import { freePort, which } from '../support.js'
import { run, until } from './support.js'

const ci = process.env.CI === 'true'
const compose = which('docker-compose') ? 'docker-compose' : 'docker compose'
const STANDINS = { redis: 'amk-standin/redis:7', postgres: 'amk-standin/postgres:15' }

function skipReason (): string | false {
  if (process.env.AMK_DOCKER_TEST === 'off') { return 'SKIPPED: AMK_DOCKER_TEST=off (CI runs this file on its own after the suite)' }
  if (ci) return false
  if (process.env.AMK_DOCKER_TEST !== 'on') { return 'SKIPPED: the compose test builds images for minutes; run it with AMK_DOCKER_TEST=on npx tap --timeout=1500 test/deploy/compose.test.ts (CI runs it after the suite)' }
  if (process.env.AMK_DOCKER_HOST === undefined && process.getuid?.() !== 0) { return 'SKIPPED: starting a Docker engine needs root' }
  const missing = ['dockerd', 'docker', 'debootstrap', 'docker-compose'].filter(tool => !which(tool))
  return missing.length > 0
    ? `SKIPPED: no Docker engine and compose tool here (missing ${missing.join(', ')}; apt-get install docker.io debootstrap docker-compose)`
    : false
}

interface Component { status: string, message: string }
interface HealthBody { components?: Record<string, Component | undefined> }
const seconds = (since: number) => ((Date.now() - since) / 1000).toFixed(1)
const skip = skipReason()
if (skip) console.log(`# ${skip}`)

t.test('compose.yaml: app + Redis + PostgreSQL, valid for the compose tool', { skip }, async t => {
  const [up, config] = commandsOf('README.md', '### Compose')
  t.equal(up, 'JWT_SECRET=$(openssl rand -hex 32) docker compose up --build -d', 'README: the up command')
  t.equal(config, 'docker compose config --services', 'README: the config command')
  t.ok(which('docker-compose') !== null || !ci, 'a compose tool is installed (docker-compose)')
  const services = await run('bash', [
    '-c',
    `JWT_SECRET=${'x'.repeat(32)} ${config.replace('docker compose', compose)}`
  ])
  t.equal(services.code, 0, `${compose} config ${services.stderr}`)
  t.same(services.stdout.split('\n').sort(), ['api', 'postgres', 'redis'])
  const resolved = await run('bash', ['-c', `JWT_SECRET=${'x'.repeat(32)} ${compose} config`])
  t.match(resolved.stdout, /REDIS_URL: redis:\/\/redis:6379/, 'the API uses the compose Redis')
  t.match(resolved.stdout, /DATABASE_URL: postgres:\/\/amk:amk@postgres:5432\/amk/, '… and the compose PostgreSQL')
  t.match(resolved.stdout, /condition: service_healthy/, 'and waits for them to be healthy')
  t.match(resolved.stdout, /published: 3001/, 'on host port 3001 by default')
  const noSecret = await run('bash', ['-c', `env -u JWT_SECRET ${compose} config`])
  t.not(noSecret.code, 0, 'refuses to start without JWT_SECRET')
})

t.test(
  'compose.yaml runs on a real Docker engine: up, healthy, Redis and PostgreSQL, login, stop, down',
  { skip, timeout: 1_500_000 },
  async t => {
    const dir = await mkdtemp(join(tmpdir(), 'amk-cp-'))
    t.teardown(() => rm(dir, { recursive: true, force: true }))
    let host = process.env.AMK_DOCKER_HOST ?? ''
    let started = Date.now()
    if (host === '') {
      const engine = await run('bash', ['scripts/docker-engine.sh', 'start', join(dir, 'engine')], {}, 600_000)
      t.teardown(() => run('bash', ['scripts/docker-engine.sh', 'stop', join(dir, 'engine')]).then(() => {}))
      t.equal(engine.code, 0, `engine started ${engine.stderr.slice(-2000)}`)
      if (engine.code !== 0) return
      host = engine.stdout.split('\n').at(-1) ?? ''
    }
    const engineSeconds = seconds(started)
    const docker = (args: string[], timeout?: number) => run('docker', args, { DOCKER_HOST: host }, timeout)

    started = Date.now()
    const standins = await run('bash', ['scripts/docker-standins.sh'], { DOCKER_HOST: host }, 1_200_000)
    const standinSeconds = seconds(started)
    t.equal(standins.code, 0, `stand-in images ${standins.code === 0 ? '' : standins.stderr.slice(-3000)}`)
    if (standins.code !== 0) return

    // The override changes nothing but the images of redis and postgres and the api's build network.
    const override = join(dir, 'compose.override.yaml')
    await writeFile(
      override,
      [
        'services:',
        '  api:',
        '    build: { context: ., network: host }',
        `  redis: { image: "${STANDINS.redis}" }`,
        `  postgres: { image: "${STANDINS.postgres}" }`,
        ''
      ].join('\n')
    )
    const port = await freePort()
    const admin = { email: 'admin@compose.test', password: randomBytes(12).toString('hex') }
    const env = {
      DOCKER_HOST: host,
      DOCKER_BUILDKIT: '0',
      COMPOSE_PROJECT_NAME: `amk-compose-${process.pid}`,
      COMPOSE_FILE: `compose.yaml:${override}`,
      API_PORT: String(port),
      ADMIN_EMAIL: admin.email,
      ADMIN_PASSWORD: admin.password
    }
    // Commands other than the README's up need some JWT_SECRET to read the file; up sets its own.
    const composeRun = (args: string, timeout?: number) =>
      run('bash', ['-c', `${compose} ${args}`], { ...env, JWT_SECRET: 'x'.repeat(32) }, timeout)
    const plain = await composeRun('-f compose.yaml config')
    const merged = await composeRun('config')
    const differing = (a: string, b: string) => a.split('\n').filter(line => !b.split('\n').includes(line))
    t.same(
      differing(merged.stdout, plain.stdout).sort(),
      ['      network: host', `    image: ${STANDINS.postgres}`, `    image: ${STANDINS.redis}`],
      'the override only swaps the Redis and PostgreSQL images and builds on the host network'
    )
    t.same(
      differing(plain.stdout, merged.stdout).sort(),
      ['    image: postgres:16', '    image: redis:7'],
      '… in place of redis:7 and postgres:16'
    )

    t.teardown(() => composeRun('down -v --remove-orphans', 180_000).then(() => {}))
    const [upCommand = ''] = commandsOf('README.md', '### Compose')
    started = Date.now()
    const upped = await run('bash', ['-c', upCommand.replace('docker compose', compose)], env, 1_200_000)
    const upSeconds = seconds(started)
    t.equal(
      upped.code,
      0,
      `${compose} up --build -d ${upped.code === 0 ? '' : (upped.stdout + upped.stderr).slice(-3000)}`
    )
    if (upped.code !== 0) return
    const ids: Record<string, string> = {}
    for (const service of ['api', 'redis', 'postgres']) ids[service] = (await composeRun(`ps -q ${service}`)).stdout
    const logs = async () => (await composeRun('logs --no-color --tail=40')).stdout.slice(-4000)

    started = Date.now()
    const healthy = await until(
      'api container healthy',
      async () => {
        const status = (await docker(['inspect', '-f', '{{.State.Health.Status}}', ids.api ?? ''])).stdout
        return status === 'healthy' ? status : undefined
      },
      180_000
    ).catch(() => 'not healthy')
    const healthySeconds = seconds(started)
    t.equal(healthy, 'healthy', `the api container reports healthy ${healthy === 'healthy' ? '' : await logs()}`)
    if (healthy !== 'healthy') return

    const base = `http://127.0.0.1:${port}`
    const health = await fetch(`${base}/api/health`)
    const body: HealthBody = JSON.parse(await health.text())
    t.equal(health.status, 200, `/api/health 200 through the published port ${port}`)
    t.equal(body.components?.redis?.status, 'healthy', 'the API talks to the compose Redis')
    t.equal(body.components?.database?.status, 'healthy', '… and to the compose PostgreSQL')

    const login = await fetch(`${base}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(admin)
    })
    const token: { token?: string } = JSON.parse(await login.text())
    t.equal(login.status, 200, 'the admin from ADMIN_EMAIL/ADMIN_PASSWORD logs in')
    const authorization = `Bearer ${token.token ?? ''}`
    const me = await fetch(`${base}/api/auth/me`, { headers: { authorization } })
    const caller: { role?: string } = JSON.parse(await me.text())
    t.equal(me.status, 200, 'an authenticated call works')
    t.equal(caller.role, 'admin', '… as the admin')
    const detailed: HealthBody = JSON.parse(
      await (await fetch(`${base}/api/health`, { headers: { authorization } })).text()
    )
    t.match(detailed.components?.database?.message, /postgres/i, 'the database is PostgreSQL, not the embedded PGlite')

    const psql = (sql: string) => composeRun(`exec -T postgres psql -U amk -d amk -tAc "${sql}"`)
    t.equal(
      (await psql(`SELECT role FROM users WHERE email = '${admin.email}'`)).stdout,
      'admin',
      'the admin user is stored in the compose PostgreSQL'
    )
    const version = (await psql('SHOW server_version')).stdout
    t.equal(
      (await composeRun('exec -T redis redis-cli ping')).stdout,
      'PONG',
      'redis-cli answers in the Redis container'
    )

    started = Date.now()
    const stopped = await composeRun('stop', 180_000)
    const stopSeconds = seconds(started)
    t.equal(stopped.code, 0, `${compose} stop ${stopped.code === 0 ? '' : stopped.stderr.slice(-2000)}`)
    const exits: Record<string, string> = {}
    for (const [service, id] of Object.entries(ids)) { exits[service] = (await docker(['inspect', '-f', '{{.State.ExitCode}}', id])).stdout }
    t.same(exits, { api: '0', redis: '0', postgres: '0' }, 'SIGTERM → the api exits 0 (Redis and PostgreSQL too)')

    const down = await composeRun('down -v', 180_000)
    t.equal(down.code, 0, `${compose} down -v ${down.code === 0 ? '' : down.stderr.slice(-2000)}`)
    const left = await docker(['ps', '-aq', '--filter', `label=com.docker.compose.project=${env.COMPOSE_PROJECT_NAME}`])
    const volumes = await docker([
      'volume',
      'ls',
      '-q',
      '--filter',
      `label=com.docker.compose.project=${env.COMPOSE_PROJECT_NAME}`
    ])
    t.same([left.stdout, volumes.stdout], ['', ''], 'down -v removes the containers and volumes')

    console.log(
      `# compose: engine ${engineSeconds} s, stand-ins ${standinSeconds} s (${/^stand-ins: .*/m.exec(standins.stderr)?.[0] ?? ''}), up --build ${upSeconds} s, api healthy ${healthySeconds} s later, PostgreSQL ${version}, stop ${stopSeconds} s, exit codes ${JSON.stringify(exits)}`
    )
  }
)

// The Express service's environment (PHASE_2_PRODUCTION_GUIDE.md, "Environment Variables") is never
// ignored: its Redis variables and old VALID_API_KEYS format stop the boot with one message naming the
// variable to set, PHASE2_PORT is honoured as PORT with a warning, and variables this service does not
// read are warned about. Checked on loadConfig, on a built app's log, on the real entry point, and on the
// transcript docs/migration.md shows.
import t from 'tap'
import { spawn } from 'node:child_process'
import { ConfigError, configWarnings, loadConfig } from '../../src/config.js'
import { LEGACY_VARIABLES, legacyEnvironment } from '../../src/config/legacy.js'
import { transcriptsOf } from '../docs-commands.js'
import { build, freePort } from '../support.js'

const ROOT = new URL('../..', import.meta.url).pathname
// Three real starts of the entry point (each a cold tsx compile) on a loaded machine.
t.setTimeout(300_000)

/** The guide's .env, value for value. */
const GUIDE_ENV: Record<string, string> = {
  NODE_ENV: 'production',
  PHASE2_PORT: '3001',
  HOST: '0.0.0.0',
  GEMINI_API_KEY: 'your-gemini-api-key',
  GEMINI_MODEL: 'gemini-2.0-flash-exp',
  GEMINI_PRO_MODEL: 'gemini-2.5-pro',
  SUPABASE_URL: 'your-supabase-url',
  SUPABASE_ANON_KEY: 'your-supabase-anon-key',
  SUPABASE_SERVICE_ROLE_KEY: 'your-service-role-key',
  JWT_SECRET: 'your-jwt-secret-min-32-chars',
  ENCRYPTION_KEY: 'your-encryption-key-32-chars',
  REDIS_URL: 'redis://localhost:6379',
  REDIS_HOST: 'localhost',
  REDIS_PORT: '6379',
  REDIS_PASSWORD: '',
  REDIS_DB: '0',
  RATE_LIMIT_WHITELIST: '127.0.0.1,::1',
  VALID_API_KEYS: 'key1,key2,key3',
  LANGSMITH_API_KEY: 'your-langsmith-key',
  LANGSMITH_PROJECT: 'amrikyy-agent',
  METRICS_PUBLIC: 'false',
  ALLOWED_ORIGINS: 'http://localhost:5173,https://yourdomain.com'
}

/** The guide's environment with what is refused rewritten as docs/migration.md says (no network services). */
function migratedEnv (): Record<string, string> {
  const env = { ...GUIDE_ENV }
  for (const name of [
    'REDIS_URL',
    'REDIS_HOST',
    'REDIS_PORT',
    'REDIS_PASSWORD',
    'REDIS_DB',
    'GEMINI_API_KEY',
    'SUPABASE_URL',
    'LANGSMITH_API_KEY'
  ]) { delete env[name] }
  return {
    ...env,
    JWT_SECRET: 'a-production-secret-of-at-least-32-characters',
    VALID_API_KEYS: 'api_0123456789abcdef0123456789abcdef:user',
    LLM_PROVIDER: 'offline'
  }
}

const NO_ROLE = 'has no role: write it as <key>:<role> (role is one of user, premium, admin, internal)'

t.test('the guide\'s environment is refused with one message naming each variable to change', async t => {
  const error = t.throws(() => loadConfig(GUIDE_ENV))
  if (!(error instanceof ConfigError)) return t.fail('a ConfigError')
  const line = (name: string) => error.problems.find(p => p.startsWith(name)) ?? ''
  for (const name of ['REDIS_HOST', 'REDIS_PORT', 'REDIS_DB']) {
    t.match(line(name), `${name} is the Express service's variable and is not read: REDIS_URL is set`, name)
  }
  t.notOk(line('REDIS_PASSWORD'), 'an empty REDIS_PASSWORD counts as unset, as every empty variable does')
  t.equal(line('VALID_API_KEYS'), `VALID_API_KEYS: entry 1 ${NO_ROLE}; entry 2 ${NO_ROLE}; entry 3 ${NO_ROLE}`)
  t.match(line('JWT_SECRET'), 'JWT_SECRET=(value hidden)', 'the guide\'s placeholder secret is 28 characters')
  t.match(line('SUPABASE_URL'), 'SUPABASE_URL="your-supabase-url"')
})

t.test('Redis host, port, password and database are refused with the REDIS_URL to set', async t => {
  const error = t.throws(() =>
    loadConfig({ REDIS_HOST: 'cache.internal', REDIS_PORT: '6380', REDIS_PASSWORD: 's3cret', REDIS_DB: '2' })
  )
  if (!(error instanceof ConfigError)) return t.fail('a ConfigError')
  t.equal(error.problems.length, 4)
  for (const name of ['REDIS_HOST', 'REDIS_PORT', 'REDIS_PASSWORD', 'REDIS_DB']) {
    t.match(
      error.message,
      `${name} is the Express service's variable: set REDIS_URL=redis://:<REDIS_PASSWORD>@cache.internal:6380/2 instead`
    )
  }
  t.notMatch(error.message, 's3cret', 'the password is never echoed')
  t.throws(() => loadConfig({ REDIS_HOST: 'localhost' }), /set REDIS_URL=redis:\/\/localhost:6379\/0 instead/)
})

t.test('PHASE2_PORT is honoured as PORT with a warning, and refused when PORT disagrees', async t => {
  const config = loadConfig({ PHASE2_PORT: '3005' })
  t.equal(config.PORT, 3005)
  t.same(configWarnings(config), [
    "PHASE2_PORT is the Express service's variable: honoured as PORT=3005 for now; rename it to PORT"
  ])
  const same = loadConfig({ PHASE2_PORT: '3005', PORT: '3005' })
  t.match(configWarnings(same), [
    "PHASE2_PORT is the Express service's variable: PORT has the same value and is used; remove PHASE2_PORT"
  ])
  t.throws(
    () => loadConfig({ PHASE2_PORT: '3005', PORT: '3006' }),
    /PHASE2_PORT=3005 and PORT=3006 disagree; set PORT only/
  )
  t.throws(
    () => loadConfig({ PHASE2_PORT: 'abc' }),
    /PORT="abc": must be integer/,
    'a bad old value is reported like a bad new one'
  )
})

t.test('variables this service does not read are warned about, each naming what replaces it', async t => {
  const config = loadConfig({
    SUPABASE_SERVICE_ROLE_KEY: 'k',
    ENCRYPTION_KEY: 'k',
    DEBUG: '*',
    LANGSMITH_TOKEN_SAMPLE_RATE: '0.1'
  })
  const warnings = configWarnings(config)
  t.equal(warnings.length, 4)
  t.match(
    warnings[0],
    /^SUPABASE_SERVICE_ROLE_KEY is the Express service's variable and is not read by this service: .*SUPABASE_JWT_SECRET/
  )
  t.match(warnings[1], /^ENCRYPTION_KEY .*stored as hashes/)
  t.match(warnings[2], /^DEBUG .*LOG_LEVEL=debug/)
  t.match(warnings[3], /^LANGSMITH_TOKEN_SAMPLE_RATE .*LANGSMITH_SAMPLE_RATE samples whole traces/)
  t.same(configWarnings(loadConfig({})), [], 'a clean environment has no warnings')
})

t.test('every variable of the legacy table is recognised: refused, or warned about', async t => {
  for (const variable of LEGACY_VARIABLES) {
    const name = variable.name.replace('*', 'CHUNK')
    const outcome = legacyEnvironment({ [name]: '1' })
    const named = [...outcome.problems.map(([n]) => n), ...outcome.warnings.map(w => w.split(' ')[0])]
    t.same(named, [name], `${name} (${variable.decision})`)
    t.equal(outcome.problems.length > 0, variable.decision === 'refused', `${name} is ${variable.decision}`)
  }
})

t.test('a built app logs each warning once at boot through the config plugin', async t => {
  const logs: string[] = []
  const app = await build(t, { env: { PHASE2_PORT: '3007', ENCRYPTION_KEY: 'k' }, logs })
  t.equal(app.config.PORT, 3007)
  t.ok(app.hasPlugin('config'))
  const warnings = logs.map(line => JSON.parse(line)).filter(entry => entry.deprecated === true)
  t.same(warnings.map(entry => [entry.level, entry.msg.split(' ')[0]]), [[40, 'PHASE2_PORT'], [40, 'ENCRYPTION_KEY']])
})

function run (
  args: string[],
  env: Record<string, string>
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env }
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', chunk => {
    stdout += chunk
  })
  child.stderr.on('data', chunk => {
    stderr += chunk
  })
  return new Promise(resolve => child.on('exit', code => resolve({ code, stdout, stderr })))
}

t.test('the entry point refuses the guide\'s environment: exit 1, one message, no stack', async t => {
  const { code, stdout, stderr } = await run(['--import=tsx', 'src/server.ts'], GUIDE_ENV)
  t.equal(code, 1)
  t.equal(stdout, '')
  t.equal(stderr.match(/Invalid configuration/g)?.length, 1)
  for (const name of ['REDIS_HOST', 'REDIS_PORT', 'REDIS_DB', 'VALID_API_KEYS']) t.match(stderr, `  - ${name}`, name)
  t.notMatch(stderr, /\n\s+at /)
})

t.test('the entry point serves the migrated guide environment on PHASE2_PORT and logs the warnings', async t => {
  const port = await freePort()
  const child = spawn(process.execPath, ['--import=tsx', 'src/server.ts'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      ...migratedEnv(),
      PHASE2_PORT: String(port),
      DATA_DIR: 'memory://'
    }
  })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let output = ''
  child.stdout.on('data', chunk => { output += chunk })
  child.stderr.on('data', chunk => { output += chunk })
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no banner:\n${output}`)), 90_000)
    child.stdout.on('data', () => {
      if (output.includes(`listening on http://localhost:${port}`)) {
        clearTimeout(timer)
        resolve()
      }
    })
    child.once('exit', () => { clearTimeout(timer); reject(new Error(`exited:\n${output}`)) })
  })
  t.equal((await fetch(`http://127.0.0.1:${port}/api/health/live`)).status, 200, 'listening on PHASE2_PORT')
  for (const name of ['PHASE2_PORT', 'SUPABASE_SERVICE_ROLE_KEY', 'ENCRYPTION_KEY']) {
    t.match(output, `"msg":"${name} is the Express service's variable`, `warns about ${name}`)
  }
  const exited = new Promise(resolve => child.once('exit', resolve))
  child.kill('SIGTERM')
  t.equal(await exited, 0)
})

t.test('docs/migration.md: the transcript of old Redis variables is what the entry point prints', async t => {
  const transcripts = transcriptsOf('docs/migration.md', '## Environment variables')
  t.ok(transcripts.length >= 1)
  for (const { command, output } of transcripts) {
    const child = spawn('bash', ['-c', command], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', npm_config_update_notifier: 'false' }
    })
    let printed = ''
    child.stdout.on('data', chunk => { printed += chunk })
    child.stderr.on('data', chunk => { printed += chunk })
    t.equal(await new Promise(resolve => child.on('exit', resolve)), 1, command)
    for (const line of output) t.ok(printed.includes(line), `prints ${line.trim()}\n${printed}`)
  }
})

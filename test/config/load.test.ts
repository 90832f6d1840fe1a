// Configuration: one schema, defaults for development, every bad variable named at once, and a bad
// environment stopping the real entry point with exit code 1 and no stack trace.
import t from 'tap'
import { spawn } from 'node:child_process'
import { ConfigError, ConfigSchema, csv, loadConfig, trustProxy } from '../../src/config.js'

const ROOT = new URL('../..', import.meta.url)

t.test('defaults need no environment at all', async t => {
  const config = loadConfig({})
  t.equal(config.PORT, 3001)
  t.equal(config.HOST, '0.0.0.0')
  t.equal(config.NODE_ENV, 'development')
  t.equal(config.DATA_DIR, './data')
  t.equal(config.DATABASE_URL, undefined)
  t.equal(config.REDIS_URL, undefined)
  t.equal(config.METRICS_PUBLIC, false)
})

t.test('strings are converted to the declared types', async t => {
  const config = loadConfig({ PORT: '8080', METRICS_PUBLIC: 'true', REDIS_REQUIRED: 'false', HEALTH_CACHE_TTL_MS: '0' })
  t.equal(config.PORT, 8080)
  t.equal(config.METRICS_PUBLIC, true)
  t.equal(config.REDIS_REQUIRED, false)
  t.equal(config.HEALTH_CACHE_TTL_MS, 0)
})

t.test('empty strings count as unset', async t => {
  const config = loadConfig({ PORT: '', DATABASE_URL: '' })
  t.equal(config.PORT, 3001)
  t.equal(config.DATABASE_URL, undefined)
})

t.test('every bad variable is named in one error, whatever their number', async t => {
  const env = {
    PORT: 'abc',
    DATABASE_URL: 'not-a-url',
    LOG_LEVEL: 'loud',
    NODE_ENV: 'staging',
    REDIS_URL: 'localhost:6379',
    METRICS_TOKEN: 'short',
    BODY_LIMIT: '-5',
    SUPABASE_URL: 'ftp://x',
    JWT_SECRET: 'too-short',
    GEMINI_BASE_URL: 'nope'
  }
  const error = t.throws(() => loadConfig(env)) as ConfigError
  t.ok(error instanceof ConfigError)
  for (const name of Object.keys(env)) t.match(error.message, new RegExp(`^  - ${name}`, 'm'), `names ${name}`)
  t.match(error.message, 'LOG_LEVEL="loud": must be one of fatal, error, warn, info, debug, trace, silent')
  t.match(error.message, 'PORT="abc"', 'quotes the value as it was set')
  t.equal(error.problems.length, Object.keys(env).length, 'one line per variable')
})

t.test('cross-field rules', async t => {
  t.throws(() => loadConfig({ NODE_ENV: 'production' }), /JWT_SECRET: required when NODE_ENV=production/)
  t.ok(loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(32), LLM_PROVIDER: 'offline' }))
  t.throws(() => loadConfig({ ADMIN_EMAIL: 'a@example.com' }), /ADMIN_EMAIL and ADMIN_PASSWORD must be set together/)
  t.throws(() => loadConfig({ LLM_PRICING: '{nope' }), /LLM_PRICING: must be JSON/)
})

t.test('every variable has a description; optional ones or defaults only', async t => {
  for (const [name, schema] of Object.entries(
    ConfigSchema.properties as Record<string, { description?: string; default?: unknown; anyOf?: unknown }>
  )) {
    t.ok(schema.description, `${name} has a description`)
    t.match(name, /^[A-Z][A-Z0-9_]*$/, `${name} is UPPER_SNAKE`)
  }
})

t.test('csv and trustProxy', async t => {
  t.same(csv(' a, b ,,c '), ['a', 'b', 'c'])
  t.same(csv(undefined), [])
  t.equal(trustProxy('true'), true)
  t.equal(trustProxy('false'), false)
  t.equal(trustProxy(''), false)
  t.equal(trustProxy('2'), 2)
  t.same(trustProxy('10.0.0.0/8, 127.0.0.1'), ['10.0.0.0/8', '127.0.0.1'])
})

t.test('a bad environment stops the server: exit 1, one message naming every bad variable, no stack', async t => {
  const child = spawn(process.execPath, ['--import=tsx', 'src/server.ts'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, PORT: 'abc', DATABASE_URL: 'not-a-url', LOG_LEVEL: 'loud' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', chunk => { stdout += chunk })
  child.stderr.on('data', chunk => { stderr += chunk })
  const code = await new Promise<number | null>(resolve => child.on('exit', resolve))
  t.equal(code, 1)
  t.equal(stdout, '', 'nothing on stdout (no banner, no logs)')
  t.equal(stderr.match(/Invalid configuration/g)?.length, 1, 'one message')
  for (const name of ['PORT', 'DATABASE_URL', 'LOG_LEVEL']) t.match(stderr, `- ${name}=`, `names ${name}`)
  t.notMatch(stderr, /\n\s+at /, 'no stack trace')
})

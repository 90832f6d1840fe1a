// Every command shown in README.md and docs/*.md is run by a test. A test runs a section's commands by
// reading them with commandsOf(file, heading) or transcriptsOf(file, heading) from test/docs-commands.ts;
// this file finds those calls in test/ and fails for a command block no test reads. It runs the quick ones
// itself: the quick start's server, the first-admin walkthrough against a started server, the bad-environment
// transcript, one test file, one benchmark module, a short fuzz run and a short amplification run.
import t from 'tap'
import { spawn } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { codeBlocks, commandsOf, COMMAND_LANGUAGES, docFiles, ROOT, transcriptsOf } from './docs-commands.js'

/** Fence languages that hold shell commands but are not the ones this test checks. */
const OTHER_SHELL_LANGUAGES = new Set(['bash', 'shell', 'zsh', 'shell-session', 'shellsession'])

interface Run { code: number | null, output: string }

/** The environment a documented command gets: no service URLs or keys from this shell, TAP's variables dropped. */
function commandEnv (extra: Record<string, string> = {}): Record<string, string> {
  const keep = ['PATH', 'HOME', 'CI', 'TEST_REDIS_URL', 'TEST_POSTGRES_URL', 'XDG_CACHE_HOME',
    'npm_config_registry', 'npm_config_cache']
  const env: Record<string, string> = {}
  for (const name of keep) { const value = process.env[name]; if (value !== undefined) env[name] = value }
  return { ...env, npm_config_update_notifier: 'false', ...extra }
}

/** Runs one command line with bash in the repository root. */
function sh (command: string, env: Record<string, string> = {}, timeout = 240_000): Promise<Run> {
  return new Promise(resolve => {
    const child = spawn('bash', ['-c', command], { cwd: ROOT, env: commandEnv(env), detached: true })
    let output = ''
    child.stdout.on('data', chunk => { output += chunk })
    child.stderr.on('data', chunk => { output += chunk })
    const timer = setTimeout(() => {
      output += `\n(killed after ${timeout} ms)`
      process.kill(-(child.pid ?? 0), 'SIGKILL')
    }, timeout)
    child.once('close', code => { clearTimeout(timer); resolve({ code, output }) })
  })
}

function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')))
    })
  })
}

interface Started { port: number, output: () => string, stop: () => Promise<number | null> }

/** Starts a documented server command (`… npm start`) on a free port with in-memory data; resolves when ready. */
async function startServer (command: string, env: Record<string, string> = {}): Promise<Started> {
  const port = await freePort()
  const serverEnv = commandEnv({ PORT: String(port), DATA_DIR: 'memory://', ...env })
  const child = spawn('bash', ['-c', command], { cwd: ROOT, env: serverEnv, detached: true })
  let output = ''
  child.stdout.on('data', chunk => { output += chunk })
  child.stderr.on('data', chunk => { output += chunk })
  const closed = new Promise<number | null>(resolve => child.once('close', code => resolve(code)))
  const stop = async () => {
    if (child.exitCode === null) process.kill(-(child.pid ?? 0), 'SIGTERM')
    return closed
  }
  const deadline = Date.now() + 180_000
  while (Date.now() < deadline && child.exitCode === null) {
    const ready = await fetch(`http://127.0.0.1:${port}/api/health/ready`).then(r => r.status === 200, () => false)
    if (ready) return { port, output: () => output, stop }
    await sleep(250)
  }
  await stop()
  throw new Error(`${command}: not ready on port ${port}\n${output}`)
}

// Eight commands start a TypeScript process each (tsx) and several run for seconds by design. One after the other
// they take about two minutes on an idle 2-core machine, more under the suite's load: past tap's 120 s per file.
t.setTimeout(600_000)

t.test('every command block of the README and docs/ is read by a test', async t => {
  const sources = readdirSync(join(ROOT, 'test'), { recursive: true, encoding: 'utf8' })
    .filter(path => path.endsWith('.ts')).map(path => readFileSync(join(ROOT, 'test', path), 'utf8'))
  const claimed = new Set(sources.flatMap(source =>
    [...source.matchAll(/(?:commandsOf|transcriptsOf)\(\s*'([^']+)',\s*'([^']+)'\s*\)/g)].map(m => `${m[1]} ${m[2]}`)))
  let blocks = 0
  for (const file of docFiles()) {
    for (const block of codeBlocks(file)) {
      const where = `${file}:${block.line} (${block.heading || 'no heading'})`
      if (OTHER_SHELL_LANGUAGES.has(block.language)) {
        t.fail(`${where}: a \`${block.language}\` block; write commands as \`sh\` (or \`console\` with $ lines)`)
      }
      if (!COMMAND_LANGUAGES.has(block.language)) continue
      blocks++
      t.ok(claimed.has(`${file} ${block.heading}`), `${where}: its commands are run by a test`)
    }
  }
  t.ok(blocks >= 10, `${blocks} command blocks`)
})

t.test('README quick start: `npm start` serves, and shuts down on SIGTERM', async t => {
  const [install, test] = commandsOf('README.md', '## Quick start')
  t.equal(install, 'npm install && npm start')
  t.equal(test, 'npm test')
  // `npm install` and `npm test` are what .ci/run does (npm ci, then the whole suite with npm test).
  const ci = readFileSync(join(ROOT, '.ci/run'), 'utf8')
  t.match(ci, /^if ! npm ci /m, '.ci/run installs')
  t.match(ci, /^AMK_DOCKER_TEST=off npm test /m, '.ci/run runs npm test')
  const server = await startServer(install.split(' && ')[1])
  t.teardown(server.stop)
  t.match(server.output(), `listening on http://localhost:${server.port}`, 'the banner')
  const status = await fetch(`http://127.0.0.1:${server.port}/api/status`)
  t.equal(status.status, 200, 'GET /api/status')
  // SIGTERM goes to the process group (npm and node), as Ctrl-C does; test/server.test.ts checks node's exit code.
  await server.stop()
  t.match(server.output(), /"msg":"shutting down"/, 'a graceful shutdown')
})

t.test('docs/operations.md: a bad environment gets the documented message', async t => {
  const transcripts = transcriptsOf('docs/operations.md', '## Start and shutdown')
  t.ok(transcripts.length >= 1)
  for (const { command, output } of transcripts) {
    const run = await sh(command, {}, 60_000)
    t.equal(run.code, 1, `${command}: exit 1`)
    for (const line of output) t.ok(run.output.includes(line), `prints ${line.trim()}\n${run.output}`)
  }
})

t.test('docs/api.md "First admin and keys": the walkthrough runs against the server it starts', async t => {
  const [start, ...rest] = commandsOf('docs/api.md', '### First admin and keys')
  t.match(start, /npm start$/, 'starts the server')
  const server = await startServer(start, { LOG_LEVEL: 'warn' })
  t.teardown(server.stop)
  const script = ['set -eo pipefail', ...rest].join('\n').replaceAll('localhost:3001', `127.0.0.1:${server.port}`)
  const run = await sh(script, {}, 60_000)
  t.equal(run.code, 0, run.output)
  t.match(run.output, /"key":"amk_[0-9A-Za-z]{40}"/, 'the new API key is in the answer')
  t.match(run.output, /writer@example\.com/, 'the user was created')
  t.notMatch(run.output, /"statusCode":[45]\d\d/, 'no error answer')
})

t.test('docs/development.md "Tests": one test file runs', async t => {
  const commands = commandsOf('docs/development.md', '## Tests')
  t.same(commands, ['npx tap test/llm/offline.test.ts'])
  for (const command of commands) {
    const run = await sh(command)
    t.equal(run.code, 0, `${command}\n${run.output.slice(-3000)}`)
  }
})

t.test('README "Benchmarks": one module runs (1 s per scenario)', async t => {
  const [command] = commandsOf('README.md', '## Benchmarks')
  const run = await sh(command, { BENCH_DURATION: '1', BENCH_CONNECTIONS: '10' })
  t.equal(run.code, 0, `${command}\n${run.output.slice(-3000)}`)
  t.match(run.output, /\| scenario/, 'prints its table')
})

t.test('docs/benchmarks.md: a short fuzz run and a short amplification run', async t => {
  const commands = commandsOf('docs/benchmarks.md', '## Hostile input: the fuzzer and the amplification benchmark')
  t.equal(commands.length, 2)
  for (const command of commands) {
    const run = await sh(command)
    t.equal(run.code, 0, `${command}\n${run.output.slice(-3000)}`)
  }
})

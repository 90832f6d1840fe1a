// `npm start` (scripts/start.mjs) runs the server as JavaScript compiled once into node_modules/.cache: it
// serves, exits 0 on SIGTERM, and a second start on the same sources reuses the build instead of making one.
import t from 'tap'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { startServer } from '../child-server.js'

t.setTimeout(240_000)
const ROOT = new URL('../..', import.meta.url).pathname
const CACHE = join(ROOT, 'node_modules/.cache/amrikyy-agent-api')

const builds = () => readdirSync(CACHE).filter(name => name.startsWith('start-'))
  .map(name => ({ name, at: statSync(join(CACHE, name, 'src/server.js')).mtimeMs }))

t.test('npm start runs the compiled sources and reuses the build', async t => {
  const script: string = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts.start
  t.equal(script, 'node scripts/start.mjs', 'npm start is the start script')
  const env = { DATA_DIR: 'memory://', LOG_LEVEL: 'warn' }

  const first = await startServer(t, ['scripts/start.mjs'], env)
  t.equal((await fetch(`http://127.0.0.1:${first.port}/api/health/ready`)).status, 200)
  t.equal((await first.stop()).code, 0, 'SIGTERM exits 0')
  const made = builds()
  t.ok(made.length >= 1, 'a build is cached')
  // No keepNames: it adds a `name` store to every closure made, ~3 KB per open stream (issue 16).
  const newest = made.reduce((a, b) => (a.at >= b.at ? a : b))
  t.notMatch(readFileSync(join(CACHE, newest.name, 'src/streams/service.js'), 'utf8'), /__name\(/, 'names not kept')

  const second = await startServer(t, ['scripts/start.mjs'], env)
  t.equal((await fetch(`http://127.0.0.1:${second.port}/api/status`)).status, 200)
  t.equal((await second.stop()).code, 0)
  const current = new Map(builds().map(build => [build.name, build.at]))
  t.ok(made.some(build => current.get(build.name) === build.at), 'the second start reused a build')
  t.ok(current.size <= 3, 'old builds are pruned')
})

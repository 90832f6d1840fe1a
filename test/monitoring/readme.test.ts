// The README's "Monitoring" section stays true: each command in its sh blocks runs from the repository
// root and exits 0, and the files it names exist.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { needs } from '../helper.js'

const ROOT = new URL('../..', import.meta.url).pathname
const readme = readFileSync(`${ROOT}/README.md`, 'utf8')
const start = readme.indexOf('\n## Monitoring\n')
const section = readme.slice(start, readme.indexOf('\n## ', start + 1))

t.test('the Monitoring section exists and names files that exist', async t => {
  t.ok(start >= 0, 'README has ## Monitoring')
  const paths = new Set([...section.matchAll(/`((?:src|test|helm)\/[\w./-]+)`/g)].map(m => m[1]))
  t.ok(paths.size >= 5, `${paths.size} paths`)
  for (const path of paths) t.ok(existsSync(`${ROOT}/${path}`), `${path} exists`)
})

t.test('every command of the Monitoring section succeeds', { skip: needs('promtool') }, async t => {
  const commands = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].flatMap(m => m[1].split('\n')).map(line => line.trim()).filter(Boolean)
  t.ok(commands.length >= 2, `${commands.length} commands`)
  for (const command of commands) {
    const run = spawnSync('bash', ['-c', command], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 })
    t.equal(run.status, 0, `${command}\n${run.stdout}${run.stderr}`)
  }
})

// The README's "Monitoring" section and the Monitoring page of docs/operations.md stay true: each command of
// the README section runs from the repository root and exits 0, and the files both name exist.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { commandsOf, ROOT, sectionOf } from '../docs-commands.js'
import { needs } from '../support.js'

t.test('the Monitoring sections exist and name files that exist', async t => {
  const section = sectionOf('README.md', '## Monitoring') + sectionOf('docs/operations.md', '## Monitoring')
  const paths = new Set([...section.matchAll(/`((?:src|test|helm)\/[\w./-]+)`/g)].map(m => m[1]))
  t.ok(paths.size >= 5, `${paths.size} paths`)
  for (const path of paths) t.ok(existsSync(`${ROOT}/${path}`), `${path} exists`)
})

t.test('every command of the Monitoring section succeeds', { skip: needs('promtool') }, async t => {
  const commands = commandsOf('README.md', '## Monitoring')
  t.ok(commands.length >= 2, `${commands.length} commands`)
  for (const command of commands) {
    const run = spawnSync('bash', ['-c', command], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 })
    t.equal(run.status, 0, `${command}\n${run.stdout}${run.stderr}`)
  }
})

// The README stays true: the quick start is the two commands, the configuration table lists every
// variable of ConfigSchema exactly as scripts/config-table.ts renders it, and the scripts and source paths
// it names exist.
import t from 'tap'
import { readFile, stat } from 'node:fs/promises'
import { ConfigSchema } from '../src/config.js'
import { configRows, END, START } from '../scripts/config-table.js'

const ROOT = new URL('..', import.meta.url)
const readme = await readFile(new URL('README.md', ROOT), 'utf8')

t.test('the quick start is `npm install && npm start` and `npm test`', async t => {
  const section = readme.slice(readme.indexOf('## Quick start'), readme.indexOf('### What runs by default'))
  const commands = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map(m => m[1].trim())
  t.same(commands, ['npm install && npm start', 'npm test'])
})

t.test('the configuration table lists every variable of ConfigSchema, as generated', async t => {
  const table = readme.slice(readme.indexOf(START) + START.length, readme.indexOf(END))
  const listed = new Map([...table.matchAll(/^\| `([A-Z][A-Z0-9_]*)` \|.*$/gm)].map(m => [m[1], m[0]]))
  const expected = configRows()
  for (const name of Object.keys(ConfigSchema.properties)) {
    t.ok(listed.has(name), `README lists ${name} (run npm run config-table)`)
    if (listed.has(name)) t.equal(listed.get(name), expected.get(name), `${name}: type, default and description match the schema`)
  }
  for (const name of listed.keys()) t.ok(name in ConfigSchema.properties, `${name} in the README is a config variable`)
})

t.test('npm scripts and source paths named in the README exist', async t => {
  const scripts = JSON.parse(await readFile(new URL('package.json', ROOT), 'utf8')).scripts as Record<string, string>
  for (const [, name] of readme.matchAll(/npm run ([\w:-]+)/g)) t.ok(scripts[name], `npm run ${name} exists`)
  for (const [, path] of new Set(readme.matchAll(/\b((?:src|test|bench|helm|scripts)\/[\w./-]*[\w/])/g))) {
    const exists = await stat(new URL(path, ROOT)).then(() => true, () => false)
    t.ok(exists, `${path} exists`)
  }
  const plugins = readme.slice(readme.indexOf('src/plugins/'), readme.indexOf('src/routes/'))
  for (const [, file] of plugins.matchAll(/\b([a-z-]+\.ts)\b/g)) {
    t.ok(await stat(new URL(`src/plugins/${file}`, ROOT)).then(() => true, () => false), `src/plugins/${file} exists`)
  }
})

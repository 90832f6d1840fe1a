// The codebase holds the figures the review asked for (issue 15): few `as` casts per 1,000 lines of src/, no
// non-null assertion on request.caller, config as the base layer (it imports no domain module), and a test/
// folder for every src/ folder. Line length is enforced by lint (eslint.config.js), not here.
import t from 'tap'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { figuresOf, sourceFiles, totals } from '../scripts/code-figures.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const SRC = join(ROOT, 'src')
const folders = (dir: string) => readdirSync(dir).filter(name => statSync(join(dir, name)).isDirectory())
const relative = (file: string) => file.slice(ROOT.length)

t.test('fewer than 5 `as` casts per 1,000 lines of src/', async t => {
  const files = sourceFiles(SRC).map(figuresOf)
  const all = totals(files)
  const worst = files.filter(f => f.casts > 0).sort((a, b) => b.casts - a.casts).slice(0, 5)
  t.ok(
    all.castsPer1000 < 5,
    `${all.casts} casts in ${all.lines} lines (${all.castsPer1000.toFixed(1)} per 1,000); most in ${worst.map(f => `${relative(f.file)} ${f.casts}`).join(', ')}`
  )
})

t.test('no non-null assertion on request.caller', async t => {
  const offenders = sourceFiles(SRC).filter(file => /\bcaller!/.test(readFileSync(file, 'utf8'))).map(relative)
  t.same(offenders, [])
})

t.test('config imports no domain module', async t => {
  // src/config.ts may import only src/config/*, and src/config/* only each other: nothing above the config layer.
  const layer = [join(SRC, 'config.ts'), ...(folders(SRC).includes('config') ? sourceFiles(join(SRC, 'config')) : [])]
  for (const file of layer) {
    const relativeImports = [...readFileSync(file, 'utf8').matchAll(/\bfrom\s+'(\.[^']*)'/g)].map(m => m[1])
    const allowed = file.endsWith('src/config.ts') ? /^\.\/config\// : /^\.\/[^/]+$/
    t.same(
      relativeImports.filter(spec => !allowed.test(spec)),
      [],
      `${relative(file)} imports only libraries and config modules`
    )
  }
})

t.test('every src/ folder has a test/ folder with tests', async t => {
  for (const folder of folders(SRC)) {
    const dir = join(ROOT, 'test', folder)
    const tests = folders(join(ROOT, 'test')).includes(folder)
      ? readdirSync(dir).filter(name => name.endsWith('.test.ts'))
      : []
    t.ok(tests.length > 0, `test/${folder}/ has tests for src/${folder}/`)
  }
})

// The schema registry (src/schemas/index.ts) is the one place components are registered: every component
// appears in the served OpenAPI document under its $id exactly once, no module registers a schema itself,
// and no source file points at a component with a hand-written id ('Name#') — routes use ref(Schema). (The
// coordinator's own `$ref: 'steps.…'` step references and the OpenAPI document's #/components paths are not ids.)
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { sourceFiles } from '../../scripts/code-figures.js'
import { componentSchemas } from '../../src/schemas/index.js'
import { build } from '../support.js'

const SRC = fileURLToPath(new URL('../../src', import.meta.url))
const sources = sourceFiles(SRC).map(file => ({ file: relative(SRC, file), text: readFileSync(file, 'utf8') }))

t.test('every registered component is in the served document, once', async t => {
  const ids = componentSchemas.map(schema => schema.$id)
  t.equal(ids.filter(id => typeof id !== 'string').length, 0, 'every component has an $id')
  t.same(ids.filter((id, i) => ids.indexOf(id) !== i), [], 'no $id is registered twice')
  const app = await build(t)
  const document = (await app.inject('/openapi.json')).json<{ components: { schemas: Record<string, unknown> } }>()
  for (const id of ids) t.ok(String(id) in document.components.schemas, `${String(id)} is a component`)
})

t.test('only the registry calls addSchema', async t => {
  const callers = sources.filter(
    ({ file, text }) => file !== join('schemas', 'index.ts') && /\b(?!ajv\b)\w+\.addSchema\(/.test(text)
  )
  t.same(callers.map(({ file }) => file), [])
})

t.test('no hand-written component reference in src/', async t => {
  const handWritten = sources.flatMap(({ file, text }) =>
    [...text.matchAll(/\$ref:\s*['`]\w+#['`]|Type\.Ref\(\s*['`]/g)].map(match => `${file}: ${match[0]}`))
  t.same(handWritten, [], 'components are referenced with ref(Schema)')
})

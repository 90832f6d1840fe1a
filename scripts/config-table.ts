// Prints the README's configuration table from ConfigSchema (src/config.ts), the single source of every
// environment variable. `npm run config-table` rewrites the table in README.md between its markers;
// test/readme.test.ts fails when the README and the schema disagree.
import { readFile, writeFile } from 'node:fs/promises'
import { pathToFileURL } from 'node:url'
import { ConfigSchema } from '../src/config.js'

export const START = '<!-- config-table:start -->'
export const END = '<!-- config-table:end -->'

interface PropertySchema {
  description?: string
  default?: unknown
  type?: string
  anyOf?: Array<{ const?: string }>
  minimum?: number
  maximum?: number
  pattern?: string
  format?: string
}

const escape = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ')

function typeOf (schema: PropertySchema): string {
  if (schema.anyOf) return schema.anyOf.map(s => `\`${s.const}\``).join(' | ')
  if (schema.type === 'integer') {
    const bounded = schema.maximum !== undefined && schema.maximum < Number.MAX_SAFE_INTEGER
    if (bounded) return `integer ${schema.minimum ?? 0}–${schema.maximum}`
    return schema.minimum ? `integer ≥ ${schema.minimum}` : 'integer'
  }
  if (schema.format) return `string (${schema.format})`
  if (schema.pattern?.startsWith('^postgres')) return 'URL (postgres://)'
  if (schema.pattern?.startsWith('^rediss?')) return 'URL (redis://)'
  if (schema.pattern?.startsWith('^https?')) return 'URL (http[s]://)'
  return schema.type ?? 'string'
}

function defaultOf (schema: PropertySchema): string {
  if (schema.default === undefined) return '—'
  if (schema.default === '') return '(empty)'
  return `\`${String(schema.default)}\``
}

/** One Markdown row per variable, in schema order. */
export function configRows (): Map<string, string> {
  const rows = new Map<string, string>()
  for (const [name, schema] of Object.entries(ConfigSchema.properties as Record<string, PropertySchema>)) {
    rows.set(name, `| \`${name}\` | ${escape(typeOf(schema))} | ${escape(defaultOf(schema))} | ${escape(schema.description ?? '')} |`)
  }
  return rows
}

export function configTable (): string {
  return ['| Variable | Type | Default | Description |', '|---|---|---|---|', ...configRows().values()].join('\n')
}

/** README text with the table between the markers replaced. */
export function withTable (readme: string): string {
  const start = readme.indexOf(START)
  const end = readme.indexOf(END)
  if (start < 0 || end < start) throw new Error(`README.md has no ${START} … ${END} markers`)
  return `${readme.slice(0, start + START.length)}\n${configTable()}\n${readme.slice(end)}`
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (process.argv.includes('--write')) {
    const path = new URL('../README.md', import.meta.url)
    await writeFile(path, withTable(await readFile(path, 'utf8')))
    process.stdout.write(`README.md: configuration table rewritten (${configRows().size} variables)\n`)
  } else {
    process.stdout.write(configTable() + '\n')
  }
}

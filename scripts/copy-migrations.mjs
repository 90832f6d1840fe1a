// Build step: the migration runner reads its .sql files next to itself, so copy them into dist/.
import { cpSync } from 'node:fs'

cpSync(new URL('../src/store/migrations/', import.meta.url), new URL('../dist/store/migrations/', import.meta.url), {
  recursive: true,
  filter: (source) => !source.includes('.') || source.endsWith('.sql') || source.endsWith('/migrations')
})

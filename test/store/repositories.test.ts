// Each table is owned by one repository module: SQL naming a table (FROM, JOIN, INTO, UPDATE, TABLE)
// appears only in its owner. Every table the migrations create has an owner, and every owner does use
// its tables, so a new table or a stray query fails here.
import t from 'tap'
import { readdir, readFile } from 'node:fs/promises'
import { join, relative } from 'node:path'

const ROOT = new URL('../..', import.meta.url).pathname

const OWNERS: Record<string, string> = {
  users: 'src/auth/users.ts',
  api_keys: 'src/auth/api-keys.ts',
  usage_ledger: 'src/store/usage-sql.ts',
  usage_instances: 'src/store/usage-sql.ts',
  workflow_runs: 'src/coordinator/run-store.ts',
  idempotency_keys: 'src/coordinator/run-store.ts',
  coordinator_stats_resets: 'src/coordinator/run-store.ts',
  schema_migrations: 'src/store/migrate.ts'
}

const SQL_TABLE = /\b(?:FROM|JOIN|INTO|UPDATE|TABLE)\s+(?:IF\s+(?:NOT\s+)?EXISTS\s+)?([a-z_][a-z0-9_]*)/g

/** The tables the SQL in `text` names. */
function tablesIn (text: string): Set<string> {
  return new Set([...text.matchAll(SQL_TABLE)].map(match => match[1]))
}

async function sourceFiles (dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true })
  return entries
    .filter(e => e.isFile() && e.name.endsWith('.ts'))
    .map(e => relative(ROOT, join(e.parentPath, e.name)))
    .sort()
}

t.test('the scanner finds the tables a statement names', async t => {
  t.same([...tablesIn('SELECT 1 FROM users u JOIN api_keys k ON true')], ['users', 'api_keys'])
  t.same([...tablesIn('INSERT INTO usage_ledger (a) VALUES ($1)')], ['usage_ledger'])
  t.same([...tablesIn('CREATE TABLE IF NOT EXISTS schema_migrations (')], ['schema_migrations'])
  t.same(
    [...tablesIn('UPDATE workflow_runs SET x = 1; DELETE FROM idempotency_keys')],
    ['workflow_runs', 'idempotency_keys']
  )
  t.same(
    [...tablesIn('FROM (SELECT * FROM usage_ledger) AS ledger CROSS JOIN LATERAL jsonb_array_elements(s)')],
    ['usage_ledger']
  )
})

t.test('every table the migrations create has an owner', async t => {
  const dir = join(ROOT, 'src/store/migrations')
  const created = new Set<string>()
  for (const file of (await readdir(dir)).filter(f => f.endsWith('.sql'))) {
    for (const match of (await readFile(join(dir, file), 'utf8')).matchAll(
      /CREATE TABLE (?:IF NOT EXISTS )?([a-z_]+)/g
    )) { created.add(match[1]) }
  }
  t.ok(created.size >= 7, `found the migrations' tables (${[...created].join(', ')})`)
  for (const table of created) t.ok(OWNERS[table], `${table} has an owning module`)
})

t.test('SQL on a table appears only in its owning module', async t => {
  const used = new Map<string, Set<string>>()
  for (const file of await sourceFiles(join(ROOT, 'src'))) {
    for (const table of tablesIn(await readFile(join(ROOT, file), 'utf8'))) {
      if (!(table in OWNERS)) continue
      t.equal(file, OWNERS[table], `${table} is queried in ${file}; its SQL belongs in ${OWNERS[table]}`)
      used.set(file, (used.get(file) ?? new Set()).add(table))
    }
  }
  for (const [table, owner] of Object.entries(OWNERS)) t.ok(used.get(owner)?.has(table), `${owner} queries ${table}`)
})

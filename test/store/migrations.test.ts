// Persistence: the migrations apply on PGlite and on a real PostgreSQL, applying them twice changes
// nothing, replicas starting together apply each once, and both drivers speak the same dialect.
import t, { type Test } from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { needs, postgresDatabase } from '../support.js'
import { openDatabase, type Database } from '../../src/store/database.js'
import { loadMigrations, migrate, splitStatements } from '../../src/store/migrate.js'

const TABLES = ['api_keys', 'idempotency_keys', 'schema_migrations', 'usage_ledger', 'users', 'workflow_runs']

/** Everything a migration could change: tables, columns with types/defaults, indexes, constraints. */
async function schemaSnapshot (db: Database): Promise<string> {
  const columns = await db.query(`SELECT table_name, column_name, data_type, is_nullable, column_default
    FROM information_schema.columns WHERE table_schema = 'public' ORDER BY table_name, column_name`)
  const indexes = await db.query(`SELECT tablename, indexname, indexdef FROM pg_indexes
    WHERE schemaname = 'public' ORDER BY tablename, indexname`)
  const constraints = await db.query(`SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint
    WHERE connamespace = 'public'::regnamespace ORDER BY conname`)
  return JSON.stringify({ columns, indexes, constraints })
}

async function migrationsApplyOnce (t: Test, db: Database) {
  const versions = (await loadMigrations()).map(m => m.version)
  t.ok(versions.includes('001_init'))
  t.same(await migrate(db), versions, 'the first run applies every migration, in order')
  const tables = await db.query<{ table_name: string }>(`SELECT table_name FROM information_schema.tables
    WHERE table_schema = 'public' ORDER BY table_name`)
  for (const table of TABLES) t.ok(tables.some(row => row.table_name === table), `table ${table} exists`)
  const before = await schemaSnapshot(db)
  const recorded = await db.query<{ version: string }>('SELECT version FROM schema_migrations ORDER BY version')
  t.same(recorded.map(r => r.version), versions, 'recorded in schema_migrations')

  t.same(await migrate(db), [], 'the second run applies nothing')
  t.equal(await schemaSnapshot(db), before, 'and changes nothing')
  t.same((await db.query('SELECT version FROM schema_migrations ORDER BY version')).length, versions.length)
}

async function speaksTheDialect (t: Test, db: Database) {
  await db.query(
    `INSERT INTO usage_ledger (caller_id, caller_type, agent, method, model, input_tokens, output_tokens, cost_usd, status)
    VALUES ($1, 'api-key', 'travel', 'searchFlights', 'offline', 10, 20, 0.00012345, 'success')`,
    ['caller-1']
  )
  const [row] = await db.query<{ id: number; cost_usd: number; input_tokens: number }>(
    'SELECT id, cost_usd, input_tokens FROM usage_ledger'
  )
  t.type(row.id, 'number', 'bigserial comes back as a number')
  t.equal(row.cost_usd, 0.00012345, 'numeric comes back as a number')
  const [sum] = await db.query<{ total: number }>(
    'SELECT sum(input_tokens + output_tokens)::bigint AS total FROM usage_ledger'
  )
  t.equal(sum.total, 30)

  await t.rejects(db.transaction(async tx => {
    await tx.query('INSERT INTO users (email, password_hash, role) VALUES (\'a@example.com\', \'x\', \'user\')')
    throw new Error('roll back')
  }), /roll back/)
  t.same(await db.query('SELECT * FROM users'), [], 'a failed transaction leaves nothing')
  await db.transaction(async tx => {
    await tx.query('INSERT INTO users (email, password_hash, role) VALUES (\'a@example.com\', \'x\', \'user\')')
  })
  t.equal((await db.query('SELECT * FROM users')).length, 1)
  await t.rejects(
    db.query("INSERT INTO users (email, password_hash, role) VALUES ('A@example.com', 'x', 'user')"),
    'emails are unique whatever their case'
  )
  await db.ping()
}

/** The compression of the run's large JSON columns: 'l' (lz4) or '' (the server's default, pglz). */
async function runColumnCompression (db: Database): Promise<Record<string, string>> {
  const rows = await db.query<{ attname: string, compression: string }>(`SELECT attname, attcompression::text AS compression
    FROM pg_attribute WHERE attrelid = 'workflow_runs'::regclass AND attname IN ('input', 'steps', 'result')`)
  return Object.fromEntries(rows.map(row => [row.attname, row.compression]))
}

t.test('a migration splits at semicolons outside dollar-quoted bodies', async t => {
  t.same(splitStatements('CREATE TABLE a (x int);\n-- a comment; not a statement\nCREATE INDEX b ON a (x);'), [
    'CREATE TABLE a (x int)',
    'CREATE INDEX b ON a (x)'
  ])
  const block = "DO $$\nBEGIN\n  EXECUTE 'SELECT 1';\n  PERFORM 2;\nEXCEPTION WHEN others THEN\n  NULL;\nEND $$"
  t.same(splitStatements(`${block};\nSELECT 3;`), [block, 'SELECT 3'], 'a DO block stays one statement')
  t.same(splitStatements('DO $body$ BEGIN PERFORM $$;$$; END $body$; SELECT 4'), [
    'DO $body$ BEGIN PERFORM $$;$$; END $body$',
    'SELECT 4'
  ], 'a tagged body ends only at its own tag')
  t.same(splitStatements('SELECT 1 AS a$b$; SELECT $1$; SELECT 2'), ['SELECT 1 AS a$b$', 'SELECT $1$', 'SELECT 2'],
    'a dollar sign inside a name or before a digit opens no body')
})

t.test('PGlite (in memory): migrations apply once; same dialect', async t => {
  const db = await openDatabase({ dataDir: 'memory://' })
  t.teardown(() => db.close())
  t.equal(db.kind, 'pglite')
  t.equal(db.location, 'memory')
  await migrationsApplyOnce(t, db)
  await speaksTheDialect(t, db)
  t.same(await runColumnCompression(db), { input: '', steps: '', result: '' }, 'no lz4 in PGlite: the default stays')
})

t.test('PGlite (directory): data survives a reopen, migrations are not applied again', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'amk-pglite-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const first = await openDatabase({ dataDir: join(dir, 'data') })
  t.equal(first.location, join(dir, 'data'))
  t.ok((await migrate(first)).length > 0)
  await first.query('INSERT INTO users (email, password_hash, role) VALUES (\'kept@example.com\', \'x\', \'admin\')')
  await first.close()

  const second = await openDatabase({ dataDir: join(dir, 'data') })
  t.teardown(() => second.close())
  t.same(await migrate(second), [], 'nothing to apply on the second start')
  t.same(await second.query('SELECT email FROM users'), [{ email: 'kept@example.com' }])
})

t.test('PostgreSQL: migrations apply once; same dialect', { skip: needs('postgres') }, async t => {
  const db = await openDatabase({ databaseUrl: await postgresDatabase(), dataDir: 'unused' })
  t.teardown(() => db.close())
  t.equal(db.kind, 'postgres')
  t.match(db.location, /^127\.0\.0\.1:5432\/amk_test_/)
  t.notMatch(db.location, /postgres@/, 'no credentials in the banner location')
  await migrationsApplyOnce(t, db)
  await speaksTheDialect(t, db)
  t.same(await runColumnCompression(db), { input: 'l', steps: 'l', result: 'l' }, "a run's JSON columns use lz4")
  const steps = JSON.stringify(Array.from({ length: 200 }, (_, index) => ({ index, text: `step ${index} `.repeat(20) })))
  await db.query(`INSERT INTO workflow_runs (id, caller_id, strategy, status, steps)
    VALUES ('00000000-0000-4000-8000-000000000001', 'c', 'parallel', 'completed', $1::jsonb)`, [steps])
  const [stored] = await db.query<{ compression: string, same: boolean }>(`SELECT pg_column_compression(steps) AS compression,
    steps = $1::jsonb AS same FROM workflow_runs`, [steps])
  t.same(stored, { compression: 'lz4', same: true }, 'a large value is stored lz4-compressed and reads back whole')
})

t.test(
  'PostgreSQL: replicas migrating at the same time apply each migration once',
  { skip: needs('postgres') },
  async t => {
    const url = await postgresDatabase()
    const replicas = await Promise.all([1, 2, 3].map(() => openDatabase({ databaseUrl: url, dataDir: 'unused' })))
    t.teardown(() => Promise.all(replicas.map(db => db.close())))
    const applied = await Promise.all(replicas.map(db => migrate(db)))
    const versions = (await loadMigrations()).map(m => m.version)
    t.same(applied.flat().sort(), versions, 'every migration applied by exactly one replica')
  }
)

// Versioned SQL migrations (src/store/migrations/NNN_name.sql), applied in order at start and recorded in
// schema_migrations. An advisory lock keeps replicas that start together from applying one twice.
import { readdir, readFile } from 'node:fs/promises'
import type { Database } from './database.js'

const MIGRATIONS_DIR = new URL('./migrations/', import.meta.url)
const LOCK_ID = 7_262_001

export interface Migration { version: string, sql: string }

export async function loadMigrations (dir: URL = MIGRATIONS_DIR): Promise<Migration[]> {
  const files = (await readdir(dir)).filter(f => /^\d+_[\w-]+\.sql$/.test(f)).sort()
  return Promise.all(
    files.map(async f => ({ version: f.replace(/\.sql$/, ''), sql: await readFile(new URL(f, dir), 'utf8') }))
  )
}

/** Applies the pending migrations; returns the versions applied now (empty when up to date). */
export async function migrate (db: Database, migrations?: Migration[]): Promise<string[]> {
  const all = migrations ?? await loadMigrations()
  // A restart on a current schema (the usual case) costs one query instead of a locked transaction per file.
  const recorded = await db.query<{ version: string }>('SELECT version FROM schema_migrations').catch(() => null)
  if (recorded) {
    const done = new Set(recorded.map(row => row.version))
    if (all.every(migration => done.has(migration.version))) return []
  }
  // Under the lock too: two replicas running CREATE TABLE IF NOT EXISTS at once collide in pg_type.
  await db.transaction(async tx => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [LOCK_ID])
    await tx.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`)
  })
  const applied: string[] = []
  for (const migration of all) {
    const done = await db.transaction(async tx => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [LOCK_ID])
      const existing = await tx.query('SELECT 1 FROM schema_migrations WHERE version = $1', [migration.version])
      if (existing.length > 0) return false
      for (const statement of splitStatements(migration.sql)) await tx.query(statement)
      await tx.query('INSERT INTO schema_migrations (version) VALUES ($1)', [migration.version])
      return true
    })
    if (done) applied.push(migration.version)
  }
  return applied
}

/**
 * Splits a migration into statements at the semicolons outside dollar-quoted bodies (a DO block's), after dropping
 * `--` comments; migrations keep semicolons out of quoted strings.
 */
export function splitStatements (sql: string): string[] {
  const text = sql.replace(/--.*$/gm, '')
  const statements: string[] = []
  let start = 0
  for (let i = 0; i < text.length; i++) {
    if (text[i] === ';') {
      statements.push(text.slice(start, i))
      start = i + 1
    } else if (text[i] === '$' && !/[\w$]/.test(text[i - 1] ?? ' ')) {
      // A body opens with $$ or $tag$, not inside an identifier (PostgreSQL's rule: `a$b$` is a name).
      const tag = /^\$(?:[A-Za-z_]\w*)?\$/.exec(text.slice(i, i + 64))?.[0]
      if (!tag) continue
      const end = text.indexOf(tag, i + tag.length)
      i = end < 0 ? text.length : end + tag.length - 1
    }
  }
  statements.push(text.slice(start))
  return statements.map(s => s.trim()).filter(Boolean)
}

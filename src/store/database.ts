// The database handle: one Postgres SQL dialect over either PGlite (in-process, the default) or a real
// PostgreSQL server (DATABASE_URL). int8 and numeric columns come back as numbers from both drivers.
import { mkdir } from 'node:fs/promises'
import pg from 'pg'
import { PGlite } from '@electric-sql/pglite'

export type Row = Record<string, unknown>

export interface Queryable {
  query<T extends Row = Row>(sql: string, params?: unknown[]): Promise<T[]>
}

export interface Database extends Queryable {
  readonly kind: 'pglite' | 'postgres'
  /** Where the data lives, for the banner (never includes a password). */
  readonly location: string
  exec(sql: string): Promise<void>
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>
  ping(): Promise<void>
  close(): Promise<void>
}

const INT8 = 20
const NUMERIC = 1700

export interface DatabaseOptions {
  databaseUrl?: string
  dataDir: string
  /** Statement and connect timeout for PostgreSQL. */
  timeoutMs?: number
}

export async function openDatabase (options: DatabaseOptions): Promise<Database> {
  return options.databaseUrl ? openPostgres(options.databaseUrl, options.timeoutMs ?? 5000) : openPglite(options.dataDir)
}

async function openPglite (dataDir: string): Promise<Database> {
  const inMemory = dataDir === 'memory://' || dataDir === ''
  if (!inMemory) await mkdir(dataDir, { recursive: true })
  const db = await PGlite.create(inMemory ? undefined : dataDir, {
    parsers: { [INT8]: Number, [NUMERIC]: Number }
  })
  const wrap = (q: { query: PGlite['query'] }): Queryable => ({
    async query<T extends Row> (sql: string, params?: unknown[]) {
      return (await q.query<T>(sql, params)).rows
    }
  })
  return {
    kind: 'pglite',
    location: inMemory ? 'memory' : dataDir,
    ...wrap(db),
    async exec (sql) { await db.exec(sql) },
    transaction: (fn) => db.transaction(tx => fn(wrap(tx))),
    async ping () { await db.query('SELECT 1') },
    async close () { if (!db.closed) await db.close() }
  }
}

async function openPostgres (url: string, timeoutMs: number): Promise<Database> {
  const pool = new pg.Pool({
    connectionString: url,
    max: 10,
    connectionTimeoutMillis: timeoutMs,
    query_timeout: timeoutMs * 6,
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === INT8 || oid === NUMERIC ? Number : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser
    }
  })
  // An idle client losing its connection must not crash the process; the next query reports it.
  pool.on('error', () => {})
  const parsed = new URL(url)
  let closed = false
  return {
    kind: 'postgres',
    location: `${parsed.hostname}:${parsed.port || 5432}${parsed.pathname}`,
    async query<T extends Row> (sql: string, params?: unknown[]) {
      return (await pool.query(sql, params)).rows as T[]
    },
    async exec (sql) { await pool.query(sql) },
    async transaction (fn) {
      const client = await pool.connect()
      try {
        await client.query('BEGIN')
        const result = await fn({ query: async (sql, params) => (await client.query(sql, params)).rows })
        await client.query('COMMIT')
        return result
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {})
        throw error
      } finally {
        client.release()
      }
    },
    async ping () { await pool.query('SELECT 1') },
    async close () { if (!closed) { closed = true; await pool.end() } }
  }
}

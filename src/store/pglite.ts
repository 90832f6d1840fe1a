// The embedded database: PGlite in-process, in DATA_DIR (locked to this process) or in memory.
import { mkdir } from 'node:fs/promises'
import { PGlite } from '@electric-sql/pglite'
import type { Database, Queryable, Row } from './database.js'
import { lockDataDir } from './data-dir-lock.js'

const INT8 = 20
const NUMERIC = 1700

export async function openPglite (dataDir: string): Promise<Database> {
  const inMemory = dataDir === 'memory://' || dataDir === ''
  let unlock = async () => {}
  if (!inMemory) {
    await mkdir(dataDir, { recursive: true })
    unlock = await lockDataDir(dataDir)
  }
  let db: PGlite
  try {
    db = await PGlite.create(inMemory ? undefined : dataDir, { parsers: { [INT8]: Number, [NUMERIC]: Number } })
  } catch (error) {
    await unlock()
    throw error
  }
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
    async close () {
      if (db.closed) return
      await db.close()
      await unlock()
    }
  }
}

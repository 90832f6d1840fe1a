// The embedded database: PGlite, in DATA_DIR (locked to this process; run on a thread of its own by
// pglite-thread.ts, which opens it with this module there) or in memory (in this thread). A new database
// is unpacked from a cached snapshot when there is one (src/store/pglite-snapshot.ts): the schema snapshot of
// the migrations it is opened with, else the initdb one, and then the migrations run; shared_buffers
// is kept small (PGLITE_SHARED_BUFFERS), since PGlite touches every buffer page at start: 128 MB of RSS at
// Postgres's default.
import { existsSync } from 'node:fs'
import { mkdir, readdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { PGlite, protocol, type PGliteOptions } from '@electric-sql/pglite'
import { isMemoryDir, type Created, type Database, type Queryable, type Row } from './database.js'
import { LOCK_FILE, lockDataDir } from './data-dir-lock.js'
import { migrate, type Migration } from './migrate.js'
import { groupWrites, type ExecEach } from './write-group.js'
import {
  DEFAULT_SNAPSHOT_DIR, discardSnapshot, readSnapshot, schemaKey, unpackSnapshot, writeSnapshot
} from './pglite-snapshot.js'

const INT8 = 20
const NUMERIC = 1700

export interface PgliteOptions {
  /** Where the initdb snapshot is cached ('' = no snapshot: initdb for every new database). */
  snapshotDir?: string
  /** Postgres's shared_buffers ('16MB'). */
  sharedBuffers?: string
  /** The migrations a new database gets while it opens (and its schema snapshot holds); none by default. */
  migrations?: Migration[]
}

/** Removes what a failed unpack left in a new data dir (the lock stays). */
async function clearDataDir (dataDir: string): Promise<void> {
  for (const name of await readdir(dataDir)) {
    if (!name.startsWith(LOCK_FILE)) await rm(join(dataDir, name), { recursive: true, force: true })
  }
}

/**
 * A simple-protocol Query message ('Q', its length, the statement, NUL); a NUL in the statement fails as
 * db.exec() fails it (22021). Written with Buffer's native UTF-8 encoder: PGlite's serializer appends the text
 * through its own writer at about 5 ns a byte (130 µs for a 23 KB run outcome, 12 µs for a ledger write), this
 * at under one.
 */
function queryMessage (sql: string): Uint8Array {
  if (sql.includes('\0')) {
    throw Object.assign(new TypeError('a statement contains NUL'), { code: '22021' })
  }
  const length = Buffer.byteLength(sql)
  const message = Buffer.allocUnsafe(length + 6)
  message[0] = 0x51 // 'Q'
  message.writeInt32BE(length + 5, 1) // the length counts itself, the text and its NUL, not the type byte
  message.write(sql, 5)
  message[length + 5] = 0
  return message
}

const IN_TRANSACTION = Symbol('in transaction')

/**
 * exec() for statements whose rows nobody reads (the usage ledger's writes, a run's outcome): the Query
 * message goes straight to Postgres under PGlite's query lock, without what db.exec() adds around it (the
 * transaction lock, blob handling, result rows turned into objects), which is about a third of the CPU of a
 * one-row write (issue 16). Nor is PGlite asked to sync its filesystem after each: the two it uses here, NodeFS
 * for a DATA_DIR and MemoryFS for memory://, write through (their syncToFs does nothing), and asking still
 * takes a lock of its own per statement. A database error still throws PGlite's DatabaseError with its
 * SQLSTATE. The query lock alone does not keep out a statement from between two statements of a
 * db.transaction() (that holds another lock while it awaits): PGlite's transaction state, read in the same
 * synchronous step as the write, says so, and such a statement goes through db.exec(), which waits for the
 * transaction's end instead of joining it.
 */
function directExec (db: PGlite): ExecEach {
  return async sql => {
    const message = queryMessage(sql)
    const outcome = await db.runExclusive(async () => {
      // Closing or closed: PGlite's own error. close() marks itself closing under this lock, then shuts the
      // module down outside it, so the mark is read here, not before.
      await db._checkReady()
      if (db.isInTransaction()) return IN_TRANSACTION
      return changedRows((await db.execProtocol(message, { syncToFs: false })).messages)
    })
    if (outcome !== IN_TRANSACTION) return outcome
    return (await db.exec(sql)).map(result => result.affectedRows ?? 0)
  }
}

/** The rows each statement changed, in order, from their CommandComplete tags ('UPDATE 3', 'INSERT 0 1'). */
function changedRows (messages: readonly unknown[]): number[] {
  const counts: number[] = []
  for (const message of messages) {
    if (message instanceof protocol.messages.CommandCompleteMessage) {
      const count = Number(message.text.slice(message.text.lastIndexOf(' ') + 1))
      counts.push(Number.isSafeInteger(count) ? count : 0)
    }
  }
  return counts
}

interface Opened {
  db: PGlite
  /** Set for a new database: what it was made from. */
  from?: Created['from']
}

/** Opens the database; a new one is unpacked from the first usable snapshot of `keys` (tried in order). */
async function create (dataDir: string | undefined, options: PgliteOptions, keys: string[]): Promise<Opened> {
  const base: PGliteOptions = {
    parsers: { [INT8]: Number, [NUMERIC]: Number },
    startParams: [...PGlite.defaultStartParams, '-c', `shared_buffers=${options.sharedBuffers ?? '16MB'}`]
  }
  const { snapshotDir } = options
  const fresh = dataDir === undefined || !existsSync(join(dataDir, 'PG_VERSION'))
  if (!fresh) return { db: await PGlite.create(dataDir, base) }
  if (!snapshotDir) return { db: await PGlite.create(dataDir, base), from: 'initdb' }
  for (const key of keys) {
    const snapshot = await readSnapshot(snapshotDir, key)
    if (!snapshot) continue
    const from = key ? 'schema snapshot' : 'snapshot'
    try {
      if (dataDir === undefined) {
        const loadDataDir = new Blob([snapshot], { type: 'application/x-tar' })
        return { db: await PGlite.create(dataDir, { ...base, loadDataDir }), from }
      }
      unpackSnapshot(snapshot, dataDir)
      return { db: await PGlite.create(dataDir, base), from }
    } catch {
      await discardSnapshot(snapshotDir, key)
      if (dataDir !== undefined) await clearDataDir(dataDir)
    }
  }
  const db = await PGlite.create(dataDir, base)
  await dumpSnapshot(db, snapshotDir)
  return { db, from: 'initdb' }
}

/** Writes the database's files as a snapshot (best effort: writeSnapshot ignores a cache it cannot write). */
async function dumpSnapshot (db: PGlite, snapshotDir: string, key?: string): Promise<void> {
  const tar = await db.dumpDataDir('none')
  await writeSnapshot(snapshotDir, new Uint8Array(await tar.arrayBuffer()), key)
}

/** The in-process database, with each statement's count for the thread's grouped writes (pglite-thread.ts). */
export interface PgliteDatabase extends Database {
  execEach: ExecEach
}

export async function openPglite (dataDir: string, options: PgliteOptions = {}): Promise<PgliteDatabase> {
  const inMemory = isMemoryDir(dataDir)
  let unlock = async () => {}
  if (!inMemory) {
    await mkdir(dataDir, { recursive: true })
    unlock = await lockDataDir(dataDir)
  }
  const snapshotDir = options.snapshotDir ?? DEFAULT_SNAPSHOT_DIR
  const migrations = options.migrations ?? []
  const key = migrations.length > 0 ? schemaKey(migrations) : ''
  let opened: Opened
  try {
    opened = await create(inMemory ? undefined : dataDir, { ...options, snapshotDir }, key ? [key, ''] : [''])
  } catch (error) {
    await unlock()
    throw error
  }
  const { db, from } = opened
  const execEach = directExec(db)
  const wrap = (q: { query: PGlite['query'] }): Queryable => ({
    async query<T extends Row> (sql: string, params?: unknown[]) {
      return (await q.query<T>(sql, params)).rows
    }
  })
  const database: PgliteDatabase = {
    kind: 'pglite',
    location: inMemory ? 'memory' : dataDir,
    ...wrap(db),
    exec: async sql => (await execEach(sql)).at(-1) ?? 0,
    execEach,
    write: groupWrites(execEach),
    transaction: (fn) => db.transaction(tx => fn(wrap(tx))),
    async ping () { await db.query('SELECT 1') },
    async close () {
      if (db.closed) return
      await db.close()
      await unlock()
    }
  }
  if (from === undefined) return database
  const created: Created = { from, applied: [] }
  if (!key || from === 'schema snapshot') return { ...database, created }
  try {
    created.applied = await migrate(database, migrations)
  } catch (error) {
    await database.close()
    throw error
  }
  // Nothing but the migrations has written to it yet: the schema snapshot holds no data of this process.
  // Best effort, as the initdb snapshot: a database that cannot be dumped never fails the open.
  if (snapshotDir) {
    // Checkpointed, so a database unpacked from it starts without replaying the migrations' WAL.
    await db.exec('CHECKPOINT').then(() => dumpSnapshot(db, snapshotDir, key)).catch(() => {})
  }
  return { ...database, created }
}

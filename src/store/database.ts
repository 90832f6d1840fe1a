// The database handle: one Postgres SQL dialect over either PGlite (embedded, the default) or a real
// PostgreSQL server (DATABASE_URL). int8 and numeric columns come back as numbers from both drivers.
// A PostgreSQL that cannot be reached surfaces as 503 AMK_DATABASE_UNAVAILABLE (src/store/postgres.ts).
// Each driver is imported only when used: PGlite's module alone is about 30 MB of a process on PostgreSQL.
import type { Migration } from './migrate.js'

export type Row = Record<string, unknown>

export interface Queryable {
  /**
   * `name`: the statement is run often and its text is always the same for the name. Outside a transaction,
   * PostgreSQL then parses it once per connection (a named prepared statement) instead of on every call;
   * PGlite ignores it.
   */
  query<T extends Row = Row>(sql: string, params?: unknown[], name?: string): Promise<T[]>
}

/** How a new embedded database came to be, and the migrations applied to it while it opened. */
export interface Created {
  from: 'initdb' | 'snapshot' | 'schema snapshot'
  applied: string[]
}

export interface Database extends Queryable {
  readonly kind: 'pglite' | 'postgres'
  /** Set when opening made a new PGlite database (DATA_DIR was empty, or memory://). */
  readonly created?: Created
  /** Where the data lives, for the banner (never includes a password). */
  readonly location: string
  /**
   * Runs statements without parameters; answers the count of the last one's command tag: the rows it changed (or,
   * for a SELECT, returned), 0 for a statement without a count.
   */
  exec(sql: string): Promise<number>
  /**
   * One statement whose rows nobody reads: answers the rows it changed. On PGlite, writes sent while another
   * runs go together in one exec once it is done (write-group.ts); on PostgreSQL, exec().
   */
  write(sql: string): Promise<number>
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>
  ping(): Promise<void>
  close(): Promise<void>
}

export interface DatabaseOptions {
  databaseUrl?: string
  dataDir: string
  /** PostgreSQL: longest wait for a new connection (DATABASE_CONNECT_TIMEOUT_MS). */
  connectTimeoutMs?: number
  /** PostgreSQL: longest wait for a pooled connection (DATABASE_ACQUIRE_TIMEOUT_MS). */
  acquireTimeoutMs?: number
  /** PostgreSQL: statement_timeout of every query (DATABASE_STATEMENT_TIMEOUT_MS). */
  statementTimeoutMs?: number
  /** PostgreSQL: most connections (DATABASE_POOL_MAX). */
  poolMax?: number
  /** PGlite: where the initdb snapshot is cached, '' for none (PGLITE_SNAPSHOT_DIR). */
  pgliteSnapshotDir?: string
  /** PGlite: Postgres's shared_buffers (PGLITE_SHARED_BUFFERS). */
  pgliteSharedBuffers?: string
  /** PGlite: the migrations a new database gets while it opens, so its schema snapshot holds them. */
  migrations?: Migration[]
  /** PostgreSQL: where it says that named prepared statements were turned off; PGlite: that its thread failed. */
  log?: { warn(details: object, message: string): void }
}

export async function openDatabase (options: DatabaseOptions): Promise<Database> {
  if (!options.databaseUrl) {
    const pglite = {
      snapshotDir: options.pgliteSnapshotDir,
      sharedBuffers: options.pgliteSharedBuffers,
      migrations: options.migrations
    }
    // On disk (what `npm start` runs), on a thread of its own (pglite-thread.ts says why); in memory, a
    // test's or a scratch run's database, in this thread: a thread costs about 0.2 s more to open and loads
    // PGlite again for each database.
    if (isMemoryDir(options.dataDir)) {
      const { openPglite } = await import('./pglite.js')
      return openPglite(options.dataDir, pglite)
    }
    const { openPgliteThread } = await import('./pglite-thread.js')
    return openPgliteThread(options.dataDir, pglite, options.log)
  }
  const { openPostgres } = await import('./postgres.js')
  return openPostgres(options.databaseUrl, {
    connectTimeoutMs: options.connectTimeoutMs ?? 1000,
    acquireTimeoutMs: options.acquireTimeoutMs ?? 1000,
    statementTimeoutMs: options.statementTimeoutMs ?? 10_000,
    poolMax: options.poolMax ?? 10,
    log: options.log
  })
}

/** DATA_DIR=memory:// (or empty): PGlite keeps nothing on disk, so there is no journal or file buffer either. */
export const isMemoryDir = (dataDir: string): boolean => dataDir === 'memory://' || dataDir === ''

// The database: PGlite by default (DATA_DIR), PostgreSQL when DATABASE_URL is set. Migrations run at
// start; the app closes what it opened. The driver's own messages (addresses) never reach a response.
import fp from 'fastify-plugin'
import { messageOf } from '../errors.js'
import { openDatabase, type Database } from '../store/database.js'
import { loadMigrations, migrate } from '../store/migrate.js'

declare module 'fastify' {
  interface FastifyInstance {
    db: Database
  }
}

export default fp(async function store (app, opts: { db?: Database }) {
  const { config } = app
  const migrations = await loadMigrations()
  const db = opts.db ?? await openDatabase({
    databaseUrl: config.DATABASE_URL,
    dataDir: config.DATA_DIR,
    connectTimeoutMs: config.DATABASE_CONNECT_TIMEOUT_MS,
    acquireTimeoutMs: config.DATABASE_ACQUIRE_TIMEOUT_MS,
    statementTimeoutMs: config.DATABASE_STATEMENT_TIMEOUT_MS,
    poolMax: config.DATABASE_POOL_MAX,
    pgliteSnapshotDir: config.PGLITE_SNAPSHOT_DIR,
    pgliteSharedBuffers: config.PGLITE_SHARED_BUFFERS,
    migrations,
    log: app.log
  })
  let applied: string[]
  try {
    applied = await migrate(db, migrations)
  } catch (error) {
    if (!opts.db) await db.close()
    throw error
  }
  // A new PGlite database got its migrations while it opened (or from the schema snapshot); any other
  // database gets them here.
  if (db.created) app.log.info({ from: db.created.from, applied: db.created.applied }, 'database created')
  if (applied.length > 0) app.log.info({ applied }, 'database migrations applied')
  app.decorate('db', db)
  if (!opts.db) app.addHook('onClose', async () => { await db.close() })

  app.health.register('database', async () => {
    await db.ping()
    return { status: 'healthy', message: `${db.kind} reachable` }
  }, { critical: true })
  app.health.addReadinessCheck(async () => {
    try {
      await db.ping()
      return null
    } catch (error) {
      return `database unreachable: ${messageOf(error)}`
    }
  })
}, { name: 'store', dependencies: ['config', 'health'] })

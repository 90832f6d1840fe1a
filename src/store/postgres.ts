// PostgreSQL through a pg pool that never leaves a request waiting on a database that is gone: bounded
// connect, pool-acquire and statement timeouts; a probe (a fresh connection running SELECT 1) whenever a
// connection fails or a query goes unanswered for SUSPECT_MS; and, once the probe fails, a fast path
// that answers 503 at once (in-flight queries included) until a background probe succeeds again.
import pg, { type QueryResult } from 'pg'
import type { Database, Queryable, Row } from './database.js'
import { databaseUnavailable, isConnectionError, translate } from './unavailable.js'

interface Ran<T> { rows: T[], count: number }

export interface PostgresOptions {
  connectTimeoutMs: number
  acquireTimeoutMs: number
  statementTimeoutMs: number
  poolMax: number
  log?: { warn(details: object, message: string): void }
}

const INT8 = 20
const NUMERIC = 1700
/**
 * Errors of a named prepared statement that the server cannot run as this client believes (named statements run
 * outside transactions, so a failed one left nothing behind and is run again unnamed): it does not hold it, or
 * holds another of that name (a pooler between us and PostgreSQL, PgBouncer in transaction mode without
 * max_prepared_statements, moved the connection to another server session), or its result's type changed since
 * it was prepared (a newer replica migrated the schema: "cached plan must not change result type").
 */
const PREPARED_STATEMENT_LOST = new Set(['26000', '42P05', '0A000'])
/** A query unanswered this long makes us check whether the server still answers a new connection. */
const SUSPECT_MS = 250
/** While down, how often a probe looks for the database again. */
const REPROBE_MS = 500

const getTypeParser: typeof pg.types.getTypeParser = (oid: number, format?: 'text' | 'binary') =>
  oid === INT8 || oid === NUMERIC ? Number : pg.types.getTypeParser(oid, format)

export function openPostgres (url: string, options: PostgresOptions): Database {
  const connection = { connectionString: url, connectionTimeoutMillis: options.connectTimeoutMs, keepAlive: true }
  const pool = new pg.Pool({
    ...connection,
    max: options.poolMax,
    statement_timeout: options.statementTimeoutMs,
    query_timeout: options.statementTimeoutMs + 1000,
    types: { getTypeParser }
  })
  let down = false
  let closed = false
  let probing: Promise<boolean> | null = null
  let reprobe: NodeJS.Timeout | null = null
  /** Named statements are prepared (Queryable.query's `name`) until the server fails to run one as prepared. */
  let prepare = true
  const inflight = new Set<{ started: number, fail(): void }>()

  /** One use of a pooled client; released once (a broken one is dropped from the pool). */
  interface Lease { client: pg.PoolClient, release(broken?: unknown): void }
  const lease = (client: pg.PoolClient): Lease => {
    let released = false
    return {
      client,
      release (broken) {
        if (released) return
        released = true
        client.release(broken instanceof Error ? broken : undefined)
      }
    }
  }

  // The probe gets what is left of the connect timeout after SUSPECT_MS, so a request stuck on a server
  // that stopped answering gets its 503 about DATABASE_CONNECT_TIMEOUT_MS after it was sent.
  const probeTimeoutMs = Math.max(100, options.connectTimeoutMs - SUSPECT_MS)

  /** A fresh connection answering SELECT 1 within the probe timeout means the database is up. */
  function probe (): Promise<boolean> {
    probing ??= (async () => {
      const client = new pg.Client({
        ...connection,
        connectionTimeoutMillis: probeTimeoutMs,
        query_timeout: probeTimeoutMs
      })
      client.on('error', () => {})
      try {
        await client.connect()
        await client.query('SELECT 1')
        client.end().catch(() => {})
        return true
      } catch {
        client.end().catch(() => {})
        return false
      }
    })().then(up => {
      probing = null
      setDown(!up)
      return up
    })
    return probing
  }

  function setDown (value: boolean) {
    down = value && !closed
    if (!down) {
      if (reprobe) clearInterval(reprobe)
      reprobe = null
      return
    }
    for (const entry of inflight) entry.fail()
    inflight.clear()
    reprobe ??= setInterval(() => { probe().catch(() => {}) }, REPROBE_MS)
    reprobe.unref()
  }

  // Queries that have waited SUSPECT_MS trigger a probe; one watchdog for all of them.
  const watchdog = setInterval(() => {
    const now = Date.now()
    if (!down && [...inflight].some(entry => now - entry.started >= SUSPECT_MS)) probe().catch(() => {})
  }, SUSPECT_MS / 2)
  watchdog.unref()

  const suspect = (error: unknown) => { if (isConnectionError(error) && !closed) probe().catch(() => {}) }
  // A client losing its connection (idle, or checked out between two queries) must not crash the
  // process; it makes us look at the server.
  pool.on('error', suspect)
  pool.on('connect', client => { client.on('error', suspect) })

  async function acquire (): Promise<Lease> {
    if (down) throw databaseUnavailable()
    const connecting = pool.connect()
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error('timeout exceeded when trying to connect')), options.acquireTimeoutMs)
    })
    try {
      return lease(await Promise.race([connecting, timeout]))
    } catch (error) {
      connecting.then(client => client.release(), () => {})
      suspect(error)
      throw translate(error)
    } finally {
      clearTimeout(timer)
    }
  }

  /**
   * Runs one query on a client; rejected at once (and the client dropped) when the database is declared down.
   * Answers its rows and the rows the (last) statement changed.
   */
  function run<T extends Row> (held: Lease, sql: string, params?: unknown[], name?: string): Promise<Ran<T>> {
    return new Promise((resolve, reject) => {
      const entry = {
        started: Date.now(),
        fail: () => {
          held.release(new Error('database unavailable'))
          reject(databaseUnavailable())
        }
      }
      inflight.add(entry)
      const named = name !== undefined && prepare
      held.client.query<T>(named ? { name, text: sql, values: params ?? [] } : { text: sql, values: params }).then(
        result => {
          inflight.delete(entry)
          // Several statements in one simple query answer one result each.
          const last = (Array.isArray(result) ? result.at(-1) : result) as QueryResult<T> | undefined
          resolve({ rows: last?.rows ?? [], count: last?.rowCount ?? 0 })
        },
        error => {
          inflight.delete(entry)
          if (named && PREPARED_STATEMENT_LOST.has(error?.code)) {
            // Run unnamed from now on: the same statement again, parsed for this call only.
            prepare = false
            options.log?.warn({ err: error }, 'named prepared statements are off: the server could not run one')
            run<T>(held, sql, params).then(resolve, reject)
            return
          }
          suspect(error)
          reject(translate(error))
        }
      )
    })
  }

  async function withClient<T> (fn: (held: Lease) => Promise<T>): Promise<T> {
    const held = await acquire()
    let broken: unknown
    try {
      return await fn(held)
    } catch (error) {
      if (isConnectionError(error)) broken = error
      throw error
    } finally {
      held.release(broken)
    }
  }

  const exec = async (sql: string) => (await withClient(client => run(client, sql))).count
  const parsed = new URL(url)
  return {
    kind: 'postgres',
    location: `${parsed.hostname}:${parsed.port || 5432}${parsed.pathname}`,
    query: <T extends Row>(sql: string, params?: unknown[], name?: string) =>
      withClient(async client => (await run<T>(client, sql, params, name)).rows),
    exec,
    write: exec,
    transaction: (fn) => withClient(async client => {
      // Unnamed inside: a lost prepared statement's error would abort the transaction, so it could not be run again.
      const tx: Queryable = {
        query: async <R extends Row>(sql: string, params?: unknown[]) => (await run<R>(client, sql, params)).rows
      }
      await run(client, 'BEGIN')
      try {
        const result = await fn(tx)
        await run(client, 'COMMIT')
        return result
      } catch (error) {
        if (!isConnectionError(error)) await run(client, 'ROLLBACK').catch(() => {})
        throw error
      }
    }),
    // Readiness and health always look: while down they wait for a probe instead of the fast path.
    async ping () {
      if (down) await probing // one started before the database came back answers for then, not now
      if (down && !(await probe())) throw databaseUnavailable()
      await withClient(client => run(client, 'SELECT 1'))
    },
    async close () {
      if (closed) return
      closed = true
      clearInterval(watchdog)
      if (reprobe) clearInterval(reprobe)
      // A frozen server never acknowledges the goodbye: do not let it hold up the shutdown.
      let timer: NodeJS.Timeout | undefined
      await Promise.race([
        pool.end(),
        new Promise(resolve => {
          timer = setTimeout(resolve, options.connectTimeoutMs)
        })
      ])
      clearTimeout(timer)
    }
  }
}

// The embedded database on a thread of its own: PGlite's WebAssembly runs a statement synchronously, so
// in-process each one held the API's event loop for its whole run (1–2 ms for a 10-task run's outcome, more
// for a large read), and every request waiting behind it waited that long. Here the API's thread only posts
// the statement and reads the answer; the worker (src/store/pglite-worker.ts) runs PGlite as openPglite()
// does in-process, so the same Database answers the same way (rows, counts, SQLSTATE errors, transactions).
// The worker keeps the process alive only while a statement is waiting; if it dies, every statement waiting
// and every later one fails as the database being unreachable (503 AMK_DATABASE_UNAVAILABLE).
import { Worker } from 'node:worker_threads'
import type { Created, Database, Queryable, Row } from './database.js'
import type { PgliteOptions } from './pglite.js'
import type { Answer, Opening, Request, SentError } from './pglite-worker.js'
import { databaseUnavailable } from './unavailable.js'
import { groupWrites } from './write-group.js'

type WithoutId<R> = R extends unknown ? Omit<R, 'id'> : never
type Sent = WithoutId<Request>

/** The error the worker sent, made again on this thread (name, message, code and the other fields). */
function received ({ name, message, fields }: SentError): Error {
  const error = Object.assign(new Error(message), fields)
  error.name = name
  return error
}

/**
 * The worker, run as this module is: JavaScript once built (npm start, dist/), else TypeScript through tsx,
 * which on Node 20 does not register itself in a worker thread, so the worker registers it first. Started from
 * a string that imports it, not from its file: a worker inherits the process's Node options, and one started
 * from a file refuses `--input-type` (`node --input-type=module -e …`), while V8's and the process's own
 * (`--max-old-space-size`, `--title`) can only be inherited, not handed over as a filtered list.
 */
function startWorker (workerData: Opening): Worker {
  const compiled = !import.meta.url.endsWith('.ts')
  const entry = JSON.stringify(new URL(`./pglite-worker.${compiled ? 'js' : 'ts'}`, import.meta.url).href)
  if (compiled) return new Worker(`import(${entry})`, { eval: true, workerData })
  const tsx = JSON.stringify(import.meta.resolve('tsx/esm/api')) // a dev dependency: not in a production install
  const load = `import(${tsx}).then(api => { api.register(); return import(${entry}) })`
  return new Worker(load, { eval: true, workerData })
}

export async function openPgliteThread (
  dataDir: string,
  options: PgliteOptions = {},
  log?: { warn(details: object, message: string): void }
): Promise<Database> {
  const worker = startWorker({ dataDir, options })
  /** What waits for each answer, by id (0: the open). */
  const pending = new Map<number, { settle(answer: Answer): void, fail(error: Error): void }>()
  let nextId = 1
  let stopped: Error | null = null
  let closing = false

  /** The answer to `id`, as the worker sent it (its type is the request's: see pglite-worker.ts). */
  const answerTo = <T>(id: number) => new Promise<T>((resolve, reject) => {
    pending.set(id, {
      settle: answer => (answer.error ? reject(received(answer.error)) : resolve(answer.value as T)),
      fail: reject
    })
  })
  const opened = answerTo<{ location: string, created?: Created }>(0)
  worker.on('message', (answer: Answer) => {
    const waiting = pending.get(answer.id)
    if (!waiting) return
    pending.delete(answer.id)
    if (pending.size === 0) worker.unref()
    waiting.settle(answer)
  })
  const stop = (reason: Error) => {
    stopped ??= reason
    for (const waiting of pending.values()) waiting.fail(stopped)
    pending.clear()
  }
  worker.on('error', error => {
    log?.warn({ err: error }, 'the embedded database failed; every query answers 503 until the process restarts')
    stop(databaseUnavailable(error))
  })
  worker.on('exit', code => {
    if (!closing && !stopped) log?.warn({ code }, "the embedded database's thread ended; every query answers 503")
    stop(databaseUnavailable(new Error(`the embedded database's thread ended (${code})`)))
  })

  const call = <T = unknown>(request: Sent): Promise<T> => {
    if (stopped) return Promise.reject(stopped)
    const id = nextId++
    if (pending.size === 0) worker.ref()
    const answer = answerTo<T>(id)
    worker.postMessage({ ...request, id })
    return answer
  }

  let location: string
  let created: Created | undefined
  try {
    ({ location, created } = await opened)
  } catch (error) {
    closing = true
    await worker.terminate()
    throw error
  }

  const query = <T extends Row>(sql: string, params?: unknown[], tx?: number) =>
    call<T[]>({ op: 'query', sql, params, tx })
  const database: Database = {
    kind: 'pglite',
    location,
    ...(created ? { created } : {}),
    query: (sql, params) => query(sql, params),
    exec: sql => call<number>({ op: 'exec', sql }),
    write: groupWrites(sql => call<number[]>({ op: 'execEach', sql })),
    async transaction<T> (fn: (tx: Queryable) => Promise<T>): Promise<T> {
      const tx = await call<number>({ op: 'begin' })
      let result: T
      try {
        result = await fn({ query: (sql, params) => query(sql, params, tx) })
      } catch (error) {
        await call({ op: 'end', tx, commit: false }).catch(() => {})
        throw error
      }
      await call({ op: 'end', tx, commit: true })
      return result
    },
    async ping () { await call({ op: 'ping' }) },
    async close () {
      if (stopped) return
      closing = true
      await call({ op: 'close' })
      stopped = databaseUnavailable(new Error('the embedded database is closed'))
      await worker.terminate()
    }
  }
  return database
}

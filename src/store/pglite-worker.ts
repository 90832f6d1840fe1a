// The embedded database's own thread (src/store/pglite-thread.ts starts it): PGlite opened here, as
// openPglite() opens it in-process, and each message from the API's thread answered with its result.
// Messages: { id, op: 'query' | 'exec' | 'execEach' | 'begin' | 'end' | 'ping' | 'close', … }; answers:
// { id, value } or { id, error } (the error's name, message and own fields, such as a SQLSTATE `code`).
import { parentPort, workerData } from 'node:worker_threads'
import type { Queryable } from './database.js'
import { openPglite, type PgliteDatabase, type PgliteOptions } from './pglite.js'

export interface Opening { dataDir: string, options: PgliteOptions }

export type Request =
  | { id: number, op: 'query', sql: string, params?: unknown[], tx?: number }
  | { id: number, op: 'exec' | 'execEach', sql: string }
  | { id: number, op: 'begin' }
  | { id: number, op: 'end', tx: number, commit: boolean }
  | { id: number, op: 'ping' | 'close' }

export type Answer = { id: number, value?: unknown, error?: undefined } | { id: number, error: SentError }

export interface SentError { name: string, message: string, fields: Record<string, unknown> }

/** An error as it crosses threads: the name, message and own primitive fields (code, detail, constraint…). */
function sendable (error: unknown): SentError {
  if (!(error instanceof Error)) return { name: 'Error', message: String(error), fields: {} }
  const fields: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(error)) {
    if (['string', 'number', 'boolean'].includes(typeof value)) fields[key] = value
  }
  return { name: error.name, message: error.message, fields }
}

/** Rolls a transaction back (its callback rejects with this). */
const ROLLBACK = Symbol('rollback')

interface OpenTransaction { tx: Queryable, end(commit: boolean): void, ended: Promise<void> }

async function serve (): Promise<void> {
  const port = parentPort!
  const { dataDir, options } = workerData as Opening
  const post = (answer: Answer) => port.postMessage(answer)
  let db: PgliteDatabase
  try {
    db = await openPglite(dataDir, options)
  } catch (error) {
    post({ id: 0, error: sendable(error) })
    return
  }
  post({ id: 0, value: { location: db.location, created: db.created } })

  const transactions = new Map<number, OpenTransaction>()
  let nextTransaction = 1

  /** Resolves with the transaction's id once BEGIN has run; rejects when it could not begin. */
  function begin (): Promise<number> {
    const txId = nextTransaction++
    let begun!: (id: number) => void
    // The callback runs once BEGIN has run, after `ended` and `begun` are set.
    const ended: Promise<void> = db.transaction(tx => new Promise<void>((resolve, reject) => {
      transactions.set(txId, { tx, ended, end: commit => (commit ? resolve() : reject(ROLLBACK)) })
      begun(txId)
    }))
    return new Promise<number>((resolve, reject) => {
      begun = resolve
      ended.catch(reject) // once begun, a no-op here: end() answers how the transaction ended
    })
  }

  async function end (txId: number, commit: boolean): Promise<void> {
    const entry = transactions.get(txId)
    if (!entry) throw new Error(`no open transaction ${txId}`)
    transactions.delete(txId)
    entry.end(commit)
    try {
      await entry.ended
    } catch (error) {
      if (error !== ROLLBACK) throw error
    }
  }

  async function answer (request: Request): Promise<unknown> {
    switch (request.op) {
      case 'query': {
        const on = request.tx === undefined ? db : transactions.get(request.tx)?.tx
        if (!on) throw new Error(`no open transaction ${request.tx}`)
        return on.query(request.sql, request.params)
      }
      case 'exec': return db.exec(request.sql)
      case 'execEach': return db.execEach(request.sql)
      case 'begin': return begin()
      case 'end': return end(request.tx, request.commit)
      case 'ping': return db.ping()
      case 'close': return db.close() // the API's thread then ends this one
    }
  }

  port.on('message', (request: Request) => {
    answer(request).then(
      value => post({ id: request.id, value }),
      error => post({ id: request.id, error: sendable(error) })
    )
  })
}

if (parentPort) await serve()

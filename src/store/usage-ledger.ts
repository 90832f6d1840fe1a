// The usage ledger: one row per LLM provider call, the source of truth for usage reports and budgets.
// A call is reserved before it starts (status 'pending', with this replica's id) and settled exactly once
// (success, error, cancelled; 'interrupted' by the sweep when its replica stopped heartbeating). Every
// write is an upsert keyed by call_id, so replays never double count. A write that fails, or that the
// database does not confirm within writeTimeoutMs, goes to the durable buffer and the caller moves on;
// the ticker replays the buffer. Its SQL is in usage-sql.ts.
// Two write modes (USAGE_WRITE_MODE): 'durable' (the default) resolves record() once the row is stored or
// buffered, so a reservation exists before the provider call and a settlement before the reply; 'behind'
// resolves at once and writes the rows of the next behindMs in one INSERT (a reservation and settlement of
// the same call become one row), trading the rows of the last window on a crash for much less CPU per call.
// On PGlite in a DATA_DIR, 'durable' gets both: each row is appended to the usage journal (journal.ts)
// before record() resolves, and written to the database as in 'behind', every journalMs.
import { randomUUID } from 'node:crypto'
import type { Queryable } from './database.js'
import { createMemoryBuffer, type UsageBuffer } from './usage-buffer.js'
import type { Journal } from './journal.js'
import {
  callerTotals,
  heartbeat,
  isDataError,
  isStored,
  retire,
  settleStale,
  stored,
  upsertInline,
  upsertTolerant,
  upsertWith,
  type Stored,
  type UsageRow
} from './usage-sql.js'

export type { UsageRow, UsageStatus } from './usage-sql.js'
export { isDataError } from './usage-sql.js'

/** After a write failed or timed out, writes go straight to the buffer this long (the ticker retries sooner). */
const SUSPECT_MS = 2000
/** Rows per INSERT when calls pile up (19 parameters each, far below Postgres' 65535). */
const BATCH = 200
/** Rows kept queued for a database that does not answer (each also waits in the buffer). */
const MAX_QUEUED = 5000

export interface UsageTotals { calls: number, inputTokens: number, outputTokens: number, costUsd: number }

export interface UsageLedger {
  readonly instanceId: string
  /** Writes the row (a reservation when status is 'pending'); resolves once it is stored or buffered. */
  record(row: UsageRow): Promise<void>
  /** Resolves once the rows recorded so far were written (or buffered): read-your-writes in 'behind' mode. */
  settled(): Promise<void>
  /** Totals of one caller since a time (budgets, /api/usage/me). */
  totals(callerId: string, since: Date): Promise<UsageTotals>
  /** Replays the buffer into the database; resolves with the number of entries written. */
  flush(): Promise<number>
  /** Settles 'interrupted' the pending rows of replicas that stopped heartbeating; their call ids. */
  sweep(): Promise<string[]>
  heartbeat(): Promise<void>
  /** Entries waiting in the buffer. */
  depth(): number
  readonly bufferKind: UsageBuffer['kind']
  /** Starts the heartbeat / replay / sweep ticker. */
  start(intervalMs: number): void
  /** Flushes what it can, settles its own pending rows 'interrupted', stops. */
  close(timeoutMs?: number): Promise<void>
}

export type UsageWriteMode = 'durable' | 'behind'

export interface LedgerOptions {
  instanceId?: string
  /** 'durable' (default): record() waits for the database or the buffer; 'behind': group commit every behindMs. */
  mode?: UsageWriteMode
  behindMs?: number
  /**
   * 'durable' with a journal: how long journaled rows gather before one INSERT (default 100). They are durable
   * in the journal already and the ledger's readers settle() first, so a longer window than 'behind's costs
   * nothing a caller sees, and PGlite runs fewer, larger statements.
   */
  journalMs?: number
  buffer?: UsageBuffer
  writeTimeoutMs?: number
  staleMs?: number
  log?: { warn(details: object, message: string): void, error(details: object, message: string): void }
  /**
   * Runs a statement by the simple query protocol (PGlite's exec()); given, rows are written with their
   * values inlined instead of bound (usage-sql.ts upsertInline: about half the CPU of a one-row write on PGlite).
   */
  exec?: (sql: string) => Promise<unknown>
  /**
   * 'durable' mode: rows are appended to this journal (on disk when record() resolves) and written behind in
   * group commits; a row the journal cannot take is written as without one. For PGlite in a DATA_DIR only.
   */
  journal?: Journal
}

export function createUsageLedger (db: Queryable, options: LedgerOptions = {}): UsageLedger {
  const instanceId = options.instanceId ?? randomUUID()
  const buffer = options.buffer ?? createMemoryBuffer()
  const lastResort = createMemoryBuffer() // when the buffer itself fails (disk full); never expected
  const writeTimeoutMs = options.writeTimeoutMs ?? 250
  const staleMs = options.staleMs ?? 30_000
  const mode = options.mode ?? 'durable'
  /** How long rows queued without a waiting caller gather before their INSERT. */
  const windowMs = mode === 'behind' ? options.behindMs ?? 10 : options.journalMs ?? 100
  const upsert = options.exec ? upsertInline(options.exec) : upsertWith(db)
  const { journal } = options
  /** release: the row is in the database or the buffer (its journal entry can go). */
  type Item = { row: Stored, abandoned: boolean, resolve(): void, reject(error: unknown): void, release(): void }
  const noop = () => {}
  let queue: Item[] = []
  let draining: Promise<void> | null = null
  /** Ends the wait of a drain that waits for more rows (a full batch, or settled()). */
  let wake: (() => void) | undefined
  let suspectUntil = 0
  /** Buffer pushes of 'behind' mode nobody awaits (close() does). */
  const background = new Set<Promise<void>>()

  /**
   * Writes the queue in batches, after `delayMs` (or one turn of the event loop) so more rows can join. Without a
   * delay a caller waits on the rows: a drain already waiting out a window goes at once.
   */
  function startDrain (delayMs?: number) {
    if (draining && delayMs === undefined) wake?.()
    draining ??= drainQueue(delayMs)
  }

  /** Waits `delayMs` (one turn of the event loop when undefined); wake() ends a timed wait early. */
  function pause (delayMs?: number): Promise<void> {
    return new Promise<void>(resolve => {
      if (delayMs === undefined) return setImmediate(resolve)
      const timer = setTimeout(resolve, delayMs)
      wake = () => { clearTimeout(timer); resolve() }
    }).then(() => { wake = undefined })
  }

  async function drainQueue (delayMs?: number) {
    try {
      // PGlite runs a query synchronously, so without the wait the rows of requests still in flight never
      // get to join and every call pays for its own INSERT.
      await pause(delayMs)
      while (queue.length > 0) {
        const started = Date.now()
        const batch = queue.slice(0, BATCH).filter(item => !item.abandoned)
        queue = queue.slice(BATCH)
        if (batch.length === 0) continue
        const bad = new Map<Stored, unknown>()
        // 'behind': nobody waits on these rows, so while the database does not answer, this batch and the rows
        // queued behind it go to the buffer, and so do new rows (suspect). A late success makes the copies no-ops.
        let buffered = false
        const late = () => {
          suspectUntil = Date.now() + SUSPECT_MS
          if (!buffered) inBackground(batch)
          buffered = true
          const waiting = queue.splice(0).filter(item => !item.abandoned)
          if (waiting.length > 0) inBackground(waiting)
        }
        const guard = mode === 'behind' || journal ? setInterval(late, writeTimeoutMs) : undefined
        try {
          await upsertTolerant(upsert, batch.map(item => item.row), (row, error) => bad.set(row, error))
          for (const item of batch) bad.has(item.row) ? item.reject(bad.get(item.row)) : item.resolve()
        } catch (error) {
          for (const item of batch) item.reject(error)
        } finally {
          clearInterval(guard)
        }
        // 'behind': rows that came while this batch was written wait for the rest of its window (a full batch
        // goes at once), so calls that never stop still make one INSERT per window, not one per write.
        if (delayMs !== undefined && queue.length > 0 && queue.length < BATCH) {
          await pause(Math.max(0, started + delayMs - Date.now()))
        }
      }
    } finally {
      draining = null // in the same turn as the last check of the queue, so no row is left behind
    }
  }

  /** Resolves true once the buffer holds the rows, false when they are only in memory (the buffer failed). */
  async function toBuffer (rows: Stored[]): Promise<boolean> {
    return buffer.push(rows).then(() => true, async err => {
      options.log?.error({ err }, 'usage buffer write failed; keeping the rows in memory')
      await lastResort.push(rows)
      return false
    })
  }

  /** Pushes the items' rows to the buffer without waiting; each is released once the buffer holds it. */
  function inBackground (items: Item[]) {
    const pushed = toBuffer(items.map(item => item.row))
      .then(held => { if (held) for (const item of items) item.release() }, () => {})
      .finally(() => background.delete(pushed))
    background.add(pushed)
  }

  /**
   * 'behind' (and journaled 'durable'): queued for the next group commit; a refused row goes to the buffer, a
   * data error is logged.
   */
  function writeBehind (row: Stored, release = noop) {
    const item: Item = {
      row,
      abandoned: false,
      resolve: release,
      reject (error) {
        if (isDataError(error)) {
          release()
          return options.log?.error({ err: error, row }, 'usage row dropped: the database refuses it')
        }
        suspectUntil = Date.now() + SUSPECT_MS
        options.log?.warn({ callId: row.call_id, reason: String(error) }, 'usage ledger write deferred to the buffer')
        inBackground([item])
      },
      release
    }
    if (Date.now() < suspectUntil) return inBackground([item])
    queue.push(item)
    startDrain(windowMs)
    if (queue.length >= BATCH) wake?.() // a full batch goes now
  }

  /** The row in the journal, or undefined when there is none or it could not take the row. */
  function journaled (row: Stored): (() => void) | undefined {
    if (!journal) return undefined
    try {
      return journal.append(row)
    } catch (err) {
      options.log?.error({ err }, 'usage journal append failed; writing the row to the database directly')
    }
  }

  async function write (row: Stored): Promise<void> {
    if (mode === 'behind') return writeBehind(row)
    const release = journaled(row)
    if (release) return writeBehind(row, release)
    if (Date.now() < suspectUntil) {
      await toBuffer([row])
      return
    }
    let timer: NodeJS.Timeout | undefined
    const item: Item = { row, abandoned: false, resolve: noop, reject: noop, release: noop }
    const stored = new Promise<void>((resolve, reject) => { item.resolve = resolve; item.reject = reject })
    queue.push(item)
    startDrain() // drain settles every item itself
    const outcome = await Promise.race([
      stored.then(() => 'stored' as const, (error: unknown) => ({ error })),
      new Promise<'timeout'>(resolve => { timer = setTimeout(() => resolve('timeout'), writeTimeoutMs) })
    ])
    clearTimeout(timer)
    if (outcome === 'stored') return
    if (outcome !== 'timeout' && isDataError(outcome.error)) throw outcome.error
    // A refused write makes the next ones skip the database for a while. A slow one stays queued (the row
    // lands as soon as the database answers; the buffered copy is then a no-op) unless the queue is long.
    if (outcome !== 'timeout') suspectUntil = Date.now() + SUSPECT_MS
    else if (queue.length > MAX_QUEUED) item.abandoned = true
    options.log?.warn(
      {
        callId: row.call_id,
        reason: outcome === 'timeout' ? `no answer within ${writeTimeoutMs} ms` : String(outcome.error)
      },
      'usage ledger write deferred to the buffer'
    )
    await toBuffer([row])
  }

  /** Drains what is queued now (at once, not after the window) and the background buffer pushes. */
  async function settled () {
    while (draining || queue.length > 0) {
      startDrain()
      await draining
    }
    await Promise.all(background)
  }

  let flushing: Promise<number> | null = null
  async function replay (entries: unknown[]) {
    const rows = entries.filter(isStored)
    await upsertTolerant(upsert, rows, (row, err) =>
      options.log?.error({ err, row }, 'usage row dropped: the database refuses it')
    )
  }

  let ticker: NodeJS.Timeout | undefined
  let lastSweep = Date.now()
  let ticking = false
  const ledger: UsageLedger = {
    instanceId,
    get bufferKind () { return buffer.kind },
    record: (row) => write(stored(row, instanceId)),
    flush () {
      flushing ??= (async () => {
        try {
          let written = 0
          for (const each of [buffer, lastResort]) written += await each.drain(replay, BATCH)
          suspectUntil = 0
          return written
        } catch (error) {
          suspectUntil = Date.now() + SUSPECT_MS
          throw error
        } finally {
          flushing = null
        }
      })()
      return flushing
    },
    sweep: () => settleStale(db, staleMs, instanceId),
    heartbeat: () => heartbeat(db, instanceId),
    depth: () => buffer.depth() + lastResort.depth(),
    settled,
    async totals (callerId, since) {
      await settled()
      const row = await callerTotals(db, callerId, since)
      return { calls: row.calls, inputTokens: row.input_tokens, outputTokens: row.output_tokens, costUsd: row.cost_usd }
    },
    start (intervalMs) {
      const tick = async () => {
        if (ticking) return
        ticking = true
        try {
          await ledger.heartbeat()
          if (ledger.depth() > 0) {
            const written = await ledger.flush()
            if (written > 0) options.log?.warn({ written }, 'usage rows replayed from the buffer')
          }
          if (Date.now() - lastSweep >= staleMs) {
            lastSweep = Date.now()
            const interrupted = await ledger.sweep()
            if (interrupted.length > 0) {
              options.log?.warn({ callIds: interrupted }, 'usage rows of a stopped instance settled interrupted')
            }
          }
        } catch {
          suspectUntil = Date.now() + SUSPECT_MS
        } finally {
          ticking = false
        }
      }
      ticker = setInterval(() => { tick().catch(() => {}) }, intervalMs)
      ticker.unref()
      tick().catch(() => {})
    },
    async close (timeoutMs = 5000) {
      clearInterval(ticker)
      const work = (async () => {
        await settled()
        await ledger.flush()
        await retire(db, instanceId)
      })()
      let timer: NodeJS.Timeout | undefined
      await Promise.race([work, new Promise(resolve => { timer = setTimeout(resolve, timeoutMs) })]).catch(err => {
        options.log?.warn(
          { err, buffered: ledger.depth() },
          'usage buffer not fully flushed at shutdown; it is replayed at the next start'
        )
      })
      clearTimeout(timer)
      // 'behind' rows the database did not take in time: the buffer keeps them for the next start (and a
      // journal the rows the buffer could not take either).
      const unwritten = queue.splice(0).filter(item => !item.abandoned)
      if (unwritten.length > 0 && await toBuffer(unwritten.map(item => item.row))) {
        for (const item of unwritten) item.release()
      }
      journal?.close()
    }
  }
  return ledger
}

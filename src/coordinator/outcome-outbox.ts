// Outcomes of finished runs not yet in the run's row. The client already has the outcome, so it is kept
// here and written until the database takes it — never turned into `failed`. While it waits, reads of the
// run on this replica answer it, the heartbeat keeps the stored row fresh (so no replica marks it
// interrupted), and at most MAX_UNSAVED are kept in memory (the oldest is dropped, and logged, past that).
// Two ways in:
// - without a journal (PostgreSQL, PGlite in memory) the outcome is written before the caller is answered,
//   and kept here only when the database could not take it; every heartbeat tick tries again;
// - with a journal (PGlite in a DATA_DIR, a single process: its data directory is locked) the outcome is
//   appended to it and the caller answered at once; it is written to the row just after (the statement takes
//   PGlite 1–2 ms for a 10-task run, and building it about 0.1 ms of this thread), and leaves the journal once
//   stored. A crash leaves it in the journal, and the next start stores it (replayJournaled) before serving
//   anything. An entry the journal cannot take is written as without one.
import type { Journal } from '../store/journal.js'
import { resultIsRebuilt, type RunStore } from './run-store.js'
import type { RunOutcome, RunView, StepResult } from './types.js'

export const MAX_UNSAVED = 1000

interface Unsaved { outcome: RunOutcome, view: RunView, storedSteps?: ReadonlySet<number>, release?: () => void }

/** What the journal holds of an outcome: what RunStore.finish needs. */
interface Journaled { runId: string, outcome: RunOutcome, strategy: string, storedSteps: number[] }

export interface OutboxLog {
  warn(details: object, message: string): void
  error(details: object, message: string): void
}

function isJournaled (value: unknown): value is Journaled {
  const entry = value as Partial<Journaled> | null
  return typeof entry?.runId === 'string' && typeof entry.strategy === 'string' &&
    typeof entry.outcome === 'object' && entry.outcome !== null && Array.isArray(entry.storedSteps)
}

/** A step's start the executor journaled instead of writing it at once (run-executor.ts). */
interface JournaledProgress { runId: string, progress: StepResult[] }

function isProgress (value: unknown): value is JournaledProgress {
  const entry = value as Partial<JournaledProgress> | null
  return typeof entry?.runId === 'string' && Array.isArray(entry.progress) &&
    entry.progress.every(step => Number.isInteger((step as Partial<StepResult> | null)?.index))
}

/**
 * The journal's `adopt` at start, in the order written: the steps' starts (stored into a row still running) and
 * the outcomes a stopped process answered and had not stored.
 */
export async function replayJournaled (store: RunStore, entries: unknown[], log?: OutboxLog): Promise<void> {
  for (const entry of entries) {
    if (isProgress(entry)) {
      await store.progress(entry.runId, entry.progress, true) // released ones may be in the file still
      continue
    }
    if (!isJournaled(entry)) continue
    await store.finish(entry.runId, entry.outcome, entry.strategy, new Set(entry.storedSteps))
    log?.warn({ runId: entry.runId }, 'workflow outcome stored from the journal of a stopped process')
  }
}

export function createOutcomeOutbox (store: RunStore, log?: OutboxLog, max = MAX_UNSAVED, journal?: Journal) {
  const unsaved = new Map<string, Unsaved>()
  let flushing: Promise<void> | null = null

  /** Writes every kept outcome, oldest first, including those added meanwhile; stops at the first failure. */
  async function writeAll (): Promise<void> {
    try {
      for (const [runId, { outcome, view, storedSteps, release }] of unsaved) {
        // Throws while the database is still away: the rest wait too.
        await store.finish(runId, outcome, view.strategy, storedSteps)
        unsaved.delete(runId)
        release?.()
        if (!release) log?.warn({ runId }, 'workflow outcome stored after the database came back')
      }
    } finally {
      flushing = null // in the same turn as the last look at the map, so no outcome is left waiting
    }
  }

  function keep (runId: string, entry: Unsaved) {
    unsaved.set(runId, entry)
    if (unsaved.size > max) {
      const [[oldest, dropped]] = unsaved
      unsaved.delete(oldest)
      log?.error({ runId: oldest, max }, dropped.release
        ? 'workflow outcome left to the journal (the next start stores it): too many waiting for the database'
        : 'workflow outcome dropped: too many outcomes waiting for the database')
    }
  }

  const outbox = {
    /**
     * Stores the outcome (at once, or just after when journaled), or keeps it for later when the database cannot
     * take it. `storedSteps`: those a progress write stored in their final state (RunStore.finish).
     */
    async finish (runId: string, outcome: RunOutcome, view: RunView, storedSteps?: ReadonlySet<number>): Promise<void> {
      let release: (() => void) | undefined
      if (journal) {
        try {
          // A parallel or sequential result is not stored (it is made of the steps' data), so not journaled either.
          const journaled = resultIsRebuilt(view.strategy) ? { ...outcome, result: null } : outcome
          const { strategy } = view
          release = journal.append({ runId, outcome: journaled, strategy, storedSteps: [...storedSteps ?? []] })
        } catch (err) {
          log?.error({ err, runId }, 'outcome journal append failed; storing the workflow outcome directly')
        }
      }
      if (release) {
        keep(runId, { outcome, view, storedSteps, release })
        // After the caller is answered: the statement is built on this thread, and PGlite (on its own thread in
        // a DATA_DIR) runs it meanwhile.
        setImmediate(() => {
          outbox.flush().catch(err => log?.warn({ err, runId }, 'could not store a journaled outcome; retried'))
        })
        return
      }
      try {
        await store.finish(runId, outcome, view.strategy, storedSteps)
      } catch (err) {
        log?.warn({ err, runId }, 'could not store the workflow outcome; kept and retried until the database is back')
        keep(runId, { outcome, view, storedSteps })
      }
    },

    /** One attempt to write every kept outcome, oldest first; throws when the database is still unreachable. */
    flush (): Promise<void> {
      if (unsaved.size === 0) return Promise.resolve()
      flushing ??= writeAll()
      return flushing
    },

    /** The finished view of a run whose outcome is still waiting here. */
    view: (runId: string): RunView | undefined => unsaved.get(runId)?.view,
    ids: (): string[] => [...unsaved.keys()],
    get size () { return unsaved.size }
  }
  return outbox
}

export type OutcomeOutbox = ReturnType<typeof createOutcomeOutbox>

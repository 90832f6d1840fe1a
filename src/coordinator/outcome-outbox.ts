// Outcomes of finished runs that could not be stored (the database was unreachable when the run ended).
// The client already has the outcome, so it is kept here and written again on every heartbeat tick
// until the database takes it — never turned into `failed`. While it waits, reads of the run on this
// replica answer it, the heartbeat keeps the stored row fresh (so no replica marks it interrupted), and
// at most MAX_UNSAVED are kept (the oldest is dropped, and logged, past that).
import type { RunStore } from './run-store.js'
import type { RunOutcome, RunView } from './types.js'

export const MAX_UNSAVED = 1000

interface Unsaved { outcome: RunOutcome, view: RunView, storedSteps?: ReadonlySet<number> }

export interface OutboxLog {
  warn(details: object, message: string): void
  error(details: object, message: string): void
}

export function createOutcomeOutbox (store: RunStore, log?: OutboxLog, max = MAX_UNSAVED) {
  const unsaved = new Map<string, Unsaved>()
  let flushing: Promise<void> | null = null

  async function writeAll (): Promise<void> {
    for (const [runId, { outcome, view, storedSteps }] of unsaved) {
      // Throws while the database is still away: the rest wait too.
      await store.finish(runId, outcome, view.strategy, storedSteps)
      unsaved.delete(runId)
      log?.warn({ runId }, 'workflow outcome stored after the database came back')
    }
  }

  return {
    /**
     * Stores the outcome now, or keeps it for later when the database cannot take it. `storedSteps`: those a
     * progress write stored in their final state (RunStore.finish).
     */
    async finish (runId: string, outcome: RunOutcome, view: RunView, storedSteps?: ReadonlySet<number>): Promise<void> {
      try {
        await store.finish(runId, outcome, view.strategy, storedSteps)
      } catch (err) {
        log?.warn({ err, runId }, 'could not store the workflow outcome; kept and retried until the database is back')
        unsaved.set(runId, { outcome, view, storedSteps })
        if (unsaved.size > max) {
          const [oldest] = unsaved.keys()
          unsaved.delete(oldest)
          log?.error({ runId: oldest, max }, 'workflow outcome dropped: too many outcomes waiting for the database')
        }
      }
    },

    /** One attempt to write every kept outcome, oldest first; throws when the database is still unreachable. */
    flush (): Promise<void> {
      if (unsaved.size === 0) return Promise.resolve()
      flushing ??= writeAll().finally(() => { flushing = null })
      return flushing
    },

    /** The finished view of a run whose outcome is still waiting here. */
    view: (runId: string): RunView | undefined => unsaved.get(runId)?.view,
    ids: (): string[] => [...unsaved.keys()],
    get size () { return unsaved.size }
  }
}

export type OutcomeOutbox = ReturnType<typeof createOutcomeOutbox>

// The coordinator's periodic upkeep, every COORDINATOR_POLL_MS: this replica's own runs first (the
// heartbeat, which also brings cancel requests stored by other replicas, and outcomes kept while the
// database was away), then expired Idempotency-Keys (hourly) and the sweep that marks runs of a crashed
// replica interrupted. Staleness is judged only on what this replica saw while connected: it never
// judges its own runs, and only after it has reached the database for COORDINATOR_STALE_MS (after an
// outage every heartbeat is old, its own included).
import type { OutboxLog, OutcomeOutbox } from './outcome-outbox.js'
import type { RunRecord, RunStore } from './run-store.js'

export interface UpkeepDeps {
  store: RunStore
  outbox: OutcomeOutbox
  /** Ids of the runs executing here. */
  running(): string[]
  /** Another replica asked to cancel this run (executing here). */
  cancel(runId: string): void
  pollMs: number
  staleMs: number
  log?: OutboxLog
}

export function createUpkeep (deps: UpkeepDeps) {
  const { store, outbox, staleMs } = deps
  /** Runs this replica executes or has finished without storing yet. */
  const own = () => [...deps.running(), ...outbox.ids()]
  // Since when this replica has reached the database without a failed tick (null: not now).
  let connectedSince: number | null = Date.now()
  const trustsHeartbeats = () => connectedSince !== null && Date.now() - connectedSince >= staleMs
  let lastPurge = 0
  let lastSweep = Date.now()
  let ticking = false

  async function tick () {
    if (ticking) return
    ticking = true
    try {
      const mine = own()
      if (mine.length > 0) for (const runId of await store.heartbeat(mine)) deps.cancel(runId)
      await outbox.flush()
      if (Date.now() - lastPurge > 3_600_000) {
        await store.purgeExpiredKeys()
        lastPurge = Date.now()
      }
      connectedSince ??= Date.now()
      // Runs left running by a replica that crashed are marked interrupted by whichever replica sweeps
      // first (once per staleMs), not only when someone reads them.
      if (trustsHeartbeats() && Date.now() - lastSweep >= staleMs) {
        lastSweep = Date.now()
        const reaped = await store.reapStale(staleMs, undefined, own())
        if (reaped.length > 0) {
          deps.log?.warn({ runIds: reaped }, 'workflow runs of a stopped instance marked interrupted')
        }
      }
    } catch (err) {
      if (connectedSince !== null) deps.log?.warn({ err }, 'coordinator heartbeat failed')
      connectedSince = null
    } finally {
      ticking = false
    }
  }
  const ticker = setInterval(() => { tick().catch(() => {}) }, deps.pollMs)
  ticker.unref()

  return {
    /** Marks a run read from the store interrupted when its replica stopped reporting; true when this call did it. */
    async reapIfStale (record: RunRecord): Promise<boolean> {
      if (record.status !== 'running' || (record.heartbeatAgeMs ?? 0) <= staleMs || !trustsHeartbeats()) return false
      const mine = own()
      if (mine.includes(record.runId)) return false
      return (await store.reapStale(staleMs, record.runId, mine)).length > 0
    },
    stop: () => clearInterval(ticker)
  }
}

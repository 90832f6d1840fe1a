// Durable workflow runs over the database (workflow_runs, idempotency_keys): create a run — claiming its
// Idempotency-Key in the same transaction, with INSERT … ON CONFLICT DO NOTHING as the arbiter between
// concurrent requests and replicas — record progress and the outcome, cancel requests across replicas,
// heartbeats of running runs, and the statistics. One SQL dialect for PGlite and PostgreSQL.
import type { Database, Queryable, Row } from '../store/database.js'
import { inlined } from '../store/sql-literal.js'
import { resultOfSteps } from './engine.js'
import type { RunOutcome, RunStatus, RunTotals, StepError, StepResult } from './types.js'

export interface RunRecord {
  runId: string
  callerId: string
  strategy: string
  workflowName: string | null
  status: RunStatus
  steps: StepResult[]
  result: unknown
  error: StepError | null
  usage: RunTotals | null
  createdAt: string
  startedAt: string | null
  finishedAt: string | null
  durationMs: number | null
  cancelRequested: boolean
  /** Milliseconds since the running replica last reported (null when finished). */
  heartbeatAgeMs: number | null
}

export interface NewRun {
  id: string
  callerId: string
  strategy: string
  workflowName?: string
  input: unknown
  steps: StepResult[]
}
export interface IdempotencyClaim { key: string, requestHash: string, ttlSeconds: number }
export type StartResult = { created: true } | { created: false, runId: string, requestHash: string }

const json = (value: unknown) => value === undefined ? null : JSON.stringify(value)
const RUN_STATUSES: readonly RunStatus[] = ['running', 'completed', 'failed', 'cancelled']

/** A timestamp column (a Date from the driver, or its text) as an ISO string. */
function isoOf (value: unknown): string {
  if (value instanceof Date) return value.toISOString()
  if (typeof value === 'string' || typeof value === 'number') return new Date(value).toISOString()
  throw new TypeError(`not a timestamp: ${String(value)}`)
}
const iso = (value: unknown) => value == null ? null : isoOf(value)

function runStatusOf (value: unknown): RunStatus {
  const status = RUN_STATUSES.find(s => s === value)
  if (!status) throw new TypeError(`unknown run status: ${String(value)}`)
  return status
}
const parsed = <T>(value: unknown): T => (typeof value === 'string' ? JSON.parse(value) : value) as T

const SELECT = 'SELECT id, caller_id, strategy, workflow_name, status, steps, result, error, usage, ' +
  `created_at, started_at,
  finished_at, duration_ms, cancel_requested_at IS NOT NULL AS cancel_requested,
  CASE WHEN status = 'running' THEN (EXTRACT(EPOCH FROM (now() - heartbeat_at)) * 1000)::float8 END AS heartbeat_age_ms
  FROM workflow_runs`

/** A parallel or sequential run's result is made of its steps' data: stored as NULL, rebuilt when read. */
export const resultIsRebuilt = (strategy: unknown): strategy is 'parallel' | 'sequential' =>
  strategy === 'parallel' || strategy === 'sequential'

/**
 * A finished parallel or sequential run stores no result (SQL NULL): it is made of its steps' data, so it is
 * rebuilt from them (engine.ts, resultOfSteps) instead of being stored twice. A run marked interrupted by
 * another replica (reapStale) has no result.
 */
function rebuiltResult (row: Row): unknown {
  const strategy = row.strategy
  if (row.status === 'running' || !resultIsRebuilt(strategy)) return null
  if (parsed<StepError | null>(row.error)?.code === 'AMK_INTERRUPTED') return null
  return resultOfSteps(strategy, parsed<StepResult[]>(row.steps) ?? [])
}

function toRecord (row: Row): RunRecord {
  return {
    runId: String(row.id),
    callerId: String(row.caller_id),
    strategy: String(row.strategy),
    workflowName: row.workflow_name == null ? null : String(row.workflow_name),
    status: runStatusOf(row.status),
    steps: parsed<StepResult[]>(row.steps) ?? [],
    result: (row.result == null ? rebuiltResult(row) : parsed(row.result)) ?? null,
    error: parsed<StepError | null>(row.error) ?? null,
    usage: parsed<RunTotals | null>(row.usage) ?? null,
    createdAt: isoOf(row.created_at),
    startedAt: iso(row.started_at),
    finishedAt: iso(row.finished_at),
    durationMs: row.duration_ms == null ? null : Number(row.duration_ms),
    cancelRequested: Boolean(row.cancel_requested),
    heartbeatAgeMs: row.heartbeat_age_ms == null ? null : Number(row.heartbeat_age_ms)
  }
}

export type RunStore = ReturnType<typeof createRunStore>

/**
 * `steps` with each step given set at its index, its value the parameter `$first`, `$first + 1`, … With
 * `overPending`, a step is set only where the stored one is still pending (a replayed start never overwrites
 * what a later write stored).
 */
function stepsSet (steps: StepResult[], first: number, overPending = false): string {
  return steps.reduce((expr, step, i) => {
    if (!Number.isInteger(step.index) || step.index < 0) throw new TypeError(`bad step index: ${step.index}`)
    const value = overPending
      ? `CASE WHEN coalesce(steps->${step.index}->>'status', 'pending') = 'pending' THEN $${first + i}::jsonb ` +
        `ELSE steps->${step.index} END`
      : `$${first + i}::jsonb`
    return `jsonb_set(${expr}, '{${step.index}}', ${value})`
  }, 'steps')
}

export function createRunStore (db: Database) {
  /**
   * A statement carrying large JSON: inlined on PGlite (store/sql-literal.ts), by write() outside a transaction; on
   * PostgreSQL bound, and prepared once per connection when it has a `name` (its text never changes).
   */
  const large = async (q: Queryable, sql: string, params: unknown[], name?: string): Promise<void> => {
    if (db.kind !== 'pglite') await q.query(sql, params, name)
    else if (q === db) await db.write(inlined(sql, params))
    else await q.query(inlined(sql, params))
  }
  const insertRun = (q: Queryable, run: NewRun) => large(q,
    `INSERT INTO workflow_runs (id, caller_id, strategy, workflow_name, status, input, steps, started_at, heartbeat_at)
     VALUES ($1, $2, $3, $4, 'running', $5::jsonb, $6::jsonb, now(), now())`,
    [run.id, run.callerId, run.strategy, run.workflowName ?? null, json(run.input), json(run.steps)],
    'amk_run_insert')

  async function claim (tx: Queryable, run: NewRun, key: IdempotencyClaim): Promise<StartResult | null> {
    await tx.query('DELETE FROM idempotency_keys WHERE caller_id = $1 AND key = $2 AND expires_at <= now()', [
      run.callerId,
      key.key
    ])
    const won = await tx.query(
      `INSERT INTO idempotency_keys (caller_id, key, request_hash, run_id, expires_at)
       VALUES ($1, $2, $3, $4, now() + $5::int * interval '1 second') ` +
        'ON CONFLICT (caller_id, key) DO NOTHING RETURNING run_id',
      [run.callerId, key.key, key.requestHash, run.id, key.ttlSeconds]
    )
    if (won.length > 0) return { created: true }
    const [held] = await tx.query(
      'SELECT run_id, request_hash FROM idempotency_keys WHERE caller_id = $1 AND key = $2',
      [run.callerId, key.key]
    )
    return held ? { created: false, runId: String(held.run_id), requestHash: String(held.request_hash) } : null
  }

  return {
    /** Creates the run; with a key, only when this request wins the key (else names the run holding it). */
    async start (run: NewRun, key?: IdempotencyClaim): Promise<StartResult> {
      if (!key) {
        await insertRun(db, run)
        return { created: true }
      }
      for (let attempt = 0; attempt < 3; attempt++) {
        const result = await db.transaction(async tx => {
          const claimed = await claim(tx, run, key)
          if (claimed?.created) await insertRun(tx, run)
          return claimed
        })
        // null: the holding key expired and was removed between our insert and select; claim again.
        if (result) return result
      }
      throw new Error('could not claim the idempotency key')
    },

    /**
     * Stores the steps given (by their `index`) into a running run, leaving the others as stored: a write
     * carries only what changed since the last one, not the whole run. One jsonb_set per step costs PGlite a
     * third of unnesting and re-aggregating the array. False when the run is no longer running (another
     * replica marked it interrupted): nothing was stored. `overPending`: each step only where the stored one
     * is still pending (a start replayed from the journal, which a later write may have passed).
     */
    async progress (runId: string, steps: StepResult[], overPending = false): Promise<boolean> {
      if (steps.length === 0) return true
      const sql = `UPDATE workflow_runs SET steps = ${stepsSet(steps, 2, overPending)} ` +
        "WHERE id = $1 AND status = 'running'"
      const params = [runId, ...steps.map(step => json(step))]
      // PGlite: inlined, by exec, which answers the rows changed. query() would send even a statement without
      // parameters in six exchanges with its WASM (parse, bind, describe, execute, sync): about 0.4 ms against 0.27.
      if (db.kind === 'pglite') return (await db.write(inlined(sql, params))) > 0
      return (await db.query(`${sql} RETURNING id`, params)).length > 0
    },

    /**
     * Stores the outcome once. The replica that ran the run knows how it ended, so its outcome also
     * replaces an AMK_INTERRUPTED mark another replica set while this one could not report. Given the
     * run's strategy, a parallel or sequential result (made of the steps' data) is not stored: reads
     * rebuild it from the steps (rebuiltResult), so the outcome write carries the data once, not twice.
     * `storedSteps` names steps a progress write already stored exactly as the outcome has them (in their
     * final state): they are not sent again, the others are set by index into the stored array. That holds
     * for a run marked interrupted too, since the mark rewrites only steps stored as running or pending,
     * never one in a final state.
     */
    async finish (
      runId: string,
      outcome: RunOutcome,
      strategy?: string,
      storedSteps?: ReadonlySet<number>
    ): Promise<void> {
      const rebuilt = resultIsRebuilt(strategy)
      const unsent = storedSteps?.size ? outcome.steps.filter(step => !storedSteps.has(step.index)) : null
      const head = [
        runId,
        outcome.status,
        rebuilt ? null : json(outcome.result ?? null),
        json(outcome.error ?? null),
        json(outcome.usage),
        outcome.durationMs
      ]
      const steps = unsent ? stepsSet(unsent, head.length + 1) : `$${head.length + 1}::jsonb`
      await large(db,
        `UPDATE workflow_runs SET status = $2, steps = ${steps}, result = $3::jsonb, error = $4::jsonb, ` +
        `usage = $5::jsonb, finished_at = now(), duration_ms = $6
         WHERE id = $1 AND (status = 'running' OR (status = 'failed' AND error->>'code' = 'AMK_INTERRUPTED'))`,
        [...head, ...(unsent ? unsent.map(step => json(step)) : [json(outcome.steps)])],
        unsent ? undefined : 'amk_run_finish' // every step sent: the same text for every run
      )
    },

    async get (runId: string): Promise<RunRecord | null> {
      const [row] = await db.query(`${SELECT} WHERE id = $1`, [runId], 'amk_run_get')
      return row ? toRecord(row) : null
    },

    /** Marks a cancel request (any replica); true when the run was still running. */
    async requestCancel (runId: string): Promise<boolean> {
      const rows = await db.query(`UPDATE workflow_runs SET cancel_requested_at = coalesce(cancel_requested_at, now())
        WHERE id = $1 AND status = 'running' RETURNING id`, [runId])
      return rows.length > 0
    },

    /** Heartbeat for the runs this replica runs; returns those another replica asked to cancel. */
    async heartbeat (runIds: string[]): Promise<string[]> {
      if (runIds.length === 0) return []
      const rows = await db.query(
        `UPDATE workflow_runs SET heartbeat_at = now() WHERE id = ANY($1::uuid[]) AND status = 'running'
        RETURNING id, cancel_requested_at IS NOT NULL AS cancel`,
        [runIds]
      )
      return rows.filter(r => r.cancel).map(r => String(r.id))
    },

    /**
     * Runs whose replica stopped reporting are marked failed (interrupted): the one given, or every stale
     * run (the periodic sweep), never those in `exclude` (the caller's own). Their steps show what the
     * last progress write knew: completed ones keep their data, a running one becomes `interrupted`, one
     * not started `skipped`; usage is the steps' sum. Returns the ids this call marked.
     */
    async reapStale (staleMs: number, runId?: string, exclude: string[] = []): Promise<string[]> {
      const error: StepError = {
        code: 'AMK_INTERRUPTED',
        message: 'the instance running this workflow stopped before it finished'
      }
      const running: StepError = {
        code: 'AMK_INTERRUPTED',
        message: 'the step was running when its instance stopped; its outcome is unknown'
      }
      const notStarted: StepError = {
        code: 'AMK_INTERRUPTED',
        message: 'not started: the instance running this workflow stopped first'
      }
      const rows = await db.query(
        `UPDATE workflow_runs SET status = 'failed', error = $2::jsonb, finished_at = now(),
          duration_ms = (EXTRACT(EPOCH FROM (now() - started_at)) * 1000)::int,
          steps = (SELECT coalesce(jsonb_agg(CASE s->>'status'
              WHEN 'running' THEN s || jsonb_build_object('status', 'interrupted', 'error', $5::jsonb)
              WHEN 'pending' THEN s || jsonb_build_object('status', 'skipped', 'error', $6::jsonb)
              ELSE s END ORDER BY n), '[]'::jsonb) FROM jsonb_array_elements(steps) WITH ORDINALITY AS e(s, n)),
          usage = (SELECT jsonb_build_object('inputTokens', coalesce(sum((s->'usage'->>'inputTokens')::numeric), 0),
              'outputTokens', coalesce(sum((s->'usage'->>'outputTokens')::numeric), 0),
              'costUsd', coalesce(sum((s->'usage'->>'costUsd')::numeric), 0)) FROM jsonb_array_elements(steps) AS u(s))
        WHERE status = 'running' AND heartbeat_at < now() - $1::int * interval '1 millisecond' ` +
        `AND ($3::uuid IS NULL OR id = $3)
          AND NOT (id = ANY($4::uuid[]))
        RETURNING id`,
        [staleMs, json(error), runId ?? null, exclude, json(running), json(notStarted)]
      )
      return rows.map(row => String(row.id))
    },

    async purgeExpiredKeys (): Promise<void> {
      await db.query('DELETE FROM idempotency_keys WHERE expires_at <= now()')
    },

    async stats (staleMs: number) {
      const [epoch] = await db.query(
        "SELECT coalesce(max(reset_at), 'epoch'::timestamptz) AS since FROM coordinator_stats_resets"
      )
      const since = epoch.since
      const byStatus = await db.query(
        `SELECT strategy, status, count(*)::int AS runs, coalesce(sum(duration_ms), 0)::float8 AS total_ms,
          count(duration_ms)::int AS timed FROM workflow_runs WHERE created_at >= $1 GROUP BY strategy, status`,
        [since]
      )
      const byAgent = await db.query(
        `SELECT s->>'agent' AS agent, count(*)::int AS calls,
          (count(*) FILTER (WHERE s->>'status' = 'completed'))::int AS succeeded
        FROM workflow_runs r CROSS JOIN LATERAL jsonb_array_elements(r.steps) AS s
        WHERE r.created_at >= $1 ` +
        "AND s->>'status' IN ('completed', 'failed', 'timed_out', 'cancelled', 'interrupted') GROUP BY 1 ORDER BY 1",
        [since]
      )
      const [active] = await db.query(`SELECT count(*)::int AS n FROM workflow_runs WHERE status = 'running'
        AND heartbeat_at >= now() - $1::int * interval '1 millisecond'`, [staleMs])
      return { since: isoOf(since), byStatus, byAgent, active: Number(active.n) }
    },

    async resetStats (by: string): Promise<void> {
      await db.query('INSERT INTO coordinator_stats_resets (reset_by) VALUES ($1)', [by])
    }
  }
}

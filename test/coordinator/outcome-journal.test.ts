// Workflow outcomes on PGlite in a DATA_DIR (src/coordinator/outcome-outbox.ts): journaled before the caller
// is answered, written to the run's row just after, read from this process meanwhile; an outcome a stopped
// process answered and did not store is stored by the next start; without a usable journal, the outcome is
// written before the caller is answered, as on PostgreSQL.
import t, { type Test } from 'tap'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setImmediate as nextTurn } from 'node:timers/promises'
import { build, pglite } from '../support.js'
import { as, COORDINATOR_ENV, post } from './support.js'
import { createRunStore, type RunStore } from '../../src/coordinator/run-store.js'
import { createOutcomeOutbox, replayJournaled } from '../../src/coordinator/outcome-outbox.js'
import type { RunOutcome, RunView, StepResult } from '../../src/coordinator/types.js'
import { openJournal, type Journal } from '../../src/store/journal.js'
import { createOfflineProvider } from '../../src/llm/offline.js'
import type { LlmProvider } from '../../src/llm/types.js'
import type { Caller } from '../../src/auth/roles.js'

function tempDir (t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'amk-outcomes-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** The entries in the journal files of `dir`. */
const entries = (dir: string) =>
  readdirSync(dir).filter(name => name.startsWith('journal-')).flatMap(name =>
    readFileSync(join(dir, name), 'utf8').split('\n').filter(Boolean).map(line => JSON.parse(line)))

const step = (index: number): StepResult => ({
  index,
  role: 'task',
  agent: 'travel',
  method: 'searchFlights',
  status: 'completed',
  data: { flights: [{ airline: `Air ${index}` }] },
  usage: { inputTokens: 10, outputTokens: 5, costUsd: 0.001 }
} as StepResult)

async function runningRun (store: RunStore): Promise<string> {
  const id = randomUUID()
  await store.start({ id, callerId: 'alice', strategy: 'parallel', input: {}, steps: [] })
  return id
}

const outcomeOf = (steps: StepResult[]): RunOutcome => ({
  status: 'completed',
  steps,
  result: { 0: steps[0].data },
  usage: { inputTokens: 10, outputTokens: 5, costUsd: 0.001 },
  durationMs: 3
})
const viewOf = (runId: string, outcome: RunOutcome) =>
  ({ runId, strategy: 'parallel', status: outcome.status, steps: outcome.steps, result: outcome.result } as RunView)

t.test('a journaled outcome: on disk when finish() resolves, served meanwhile, stored just after, released',
  async t => {
    const dir = tempDir(t)
    const store = createRunStore(await pglite())
    const journal = await openJournal(dir, async () => {})
    t.teardown(() => journal.close())
    const outbox = createOutcomeOutbox(store, undefined, undefined, journal)
    const runId = await runningRun(store)
    const outcome = outcomeOf([step(0)])
    await outbox.finish(runId, outcome, viewOf(runId, outcome))

    t.equal((await store.get(runId))!.status, 'running', 'the row is not written before the caller is answered')
    t.equal(outbox.view(runId)?.status, 'completed', 'reads here answer the outcome meanwhile')
    t.same(entries(dir), [{ runId, outcome: { ...outcome, result: null }, strategy: 'parallel', storedSteps: [] }],
      'the journal holds it, without the result a parallel run rebuilds from its steps')

    await nextTurn()
    await outbox.flush()
    const stored = await store.get(runId)
    t.equal(stored!.status, 'completed', 'stored just after')
    t.same(stored!.steps, outcome.steps)
    t.same(stored!.result, outcome.result, 'the result is rebuilt from the steps')
    t.equal(outbox.size, 0)
    t.equal(journal.open(), 0, 'released once stored')
    t.same(entries(dir), [])
  })

t.test('an outcome the database could not take before a stop is stored by the next start, once', async t => {
  const dir = tempDir(t)
  const real = createRunStore(await pglite())
  const down: RunStore = { ...real, finish: async () => { throw new Error('connect ECONNREFUSED') } }
  const journal = await openJournal(dir, async () => {})
  const outbox = createOutcomeOutbox(down, undefined, undefined, journal)
  const runId = await runningRun(real)
  const outcome = outcomeOf([step(0), step(1)])
  await outbox.finish(runId, outcome, viewOf(runId, outcome))
  await nextTurn()
  await t.rejects(outbox.flush(), /ECONNREFUSED/)
  t.equal(outbox.size, 1, 'kept here while the database is away')
  journal.close() // the process stops: the entry stays in the file
  t.equal(entries(dir).length, 1)

  const reopened = await openJournal(dir, rows => replayJournaled(real, rows))
  t.teardown(() => reopened.close())
  const stored = await real.get(runId)
  t.equal(stored!.status, 'completed', 'the next start stored it')
  t.same(stored!.steps, outcome.steps)
  t.same(entries(dir), [], 'and the old journal is gone')
  await replayJournaled(real, [{ runId, outcome: { ...outcome, status: 'failed' }, strategy: 'parallel', storedSteps: [] }])
  t.equal((await real.get(runId))!.status, 'completed', 'a second replay changes nothing: the outcome is stored once')
  await replayJournaled(real, [{ runId }, 'torn', null])
  t.pass('entries that are not outcomes are skipped')
})

t.test('past the bound, the oldest journaled outcome stays only in the journal, for the next start', async t => {
  const dir = tempDir(t)
  const real = createRunStore(await pglite())
  const down: RunStore = { ...real, finish: async () => { throw new Error('connect ECONNREFUSED') } }
  const journal = await openJournal(dir, async () => {})
  const errors: string[] = []
  const log = { warn () {}, error (_details: object, message: string) { errors.push(message) } }
  const outbox = createOutcomeOutbox(down, log, 1, journal)
  const first = await runningRun(real)
  const second = await runningRun(real)
  const outcome = outcomeOf([step(0)])
  for (const runId of [first, second]) await outbox.finish(runId, outcome, viewOf(runId, outcome))
  t.same(outbox.ids(), [second], 'memory keeps the bound')
  t.match(errors, [/left to the journal/])
  journal.close()
  await (await openJournal(dir, rows => replayJournaled(real, rows))).close()
  const stored = await Promise.all([first, second].map(id => real.get(id)))
  t.same(stored.map(run => run!.status), ['completed', 'completed'], 'the next start stores both')
})

t.test('a journal that cannot take the outcome: it is stored before finish() resolves', async t => {
  const store = createRunStore(await pglite())
  const broken: Journal = {
    append: () => { throw new Error('ENOSPC: no space left on device') },
    open: () => 0,
    close: () => {}
  }
  const errors: string[] = []
  const log = { warn () {}, error (_details: object, message: string) { errors.push(message) } }
  const outbox = createOutcomeOutbox(store, log, undefined, broken)
  const runId = await runningRun(store)
  const outcome = outcomeOf([step(0)])
  await outbox.finish(runId, outcome, viewOf(runId, outcome))
  t.equal((await store.get(runId))!.status, 'completed', 'written before the caller is answered')
  t.equal(outbox.size, 0)
  t.match(errors, [/outcome journal append failed/])
})

t.test('the app on PGlite in a DATA_DIR: runs answer from the journal, rows follow, a restart replays', async t => {
  const dataDir = tempDir(t)
  const env = { ...COORDINATOR_ENV, DATA_DIR: dataDir }
  const outcomes = join(dataDir, 'run-outcomes')
  const app = await build(t, { db: null, env })
  const tasks = [
    { agent: 'travel', method: 'searchFlights', input: { from: 'Cairo', to: 'Paris', date: '2030-05-01' } },
    { agent: 'travel', method: 'getVisaRequirements', input: { destination: 'Japan', nationality: 'Egyptian' } }
  ]
  const res = await post(app, 'parallel', { tasks })
  t.equal(res.statusCode, 200)
  const run = res.json()
  t.equal(run.status, 'completed')
  const read = await app.inject({ url: `/api/coordinator/runs/${run.runId}`, headers: as('alice') })
  t.equal(read.json().status, 'completed', 'a read right after the answer sees the outcome')
  t.same(read.json().steps, run.steps)
  const row = async () => (await app.db.query('SELECT status, steps FROM workflow_runs WHERE id = $1', [run.runId]))[0]
  for (let i = 0; i < 100 && (await row()).status !== 'completed'; i++) await nextTurn()
  t.equal((await row()).status, 'completed', 'the row is written')
  t.same(entries(outcomes), [], 'and the journal released')

  // A process that answered a run and stopped before its row was written: the row still running, the outcome
  // only in its journal.
  const pending = await post(app, 'parallel', { tasks })
  const { runId, steps } = pending.json()
  await app.close()
  const stopped = await build(t, { db: null, env })
  await stopped.db.query(
    "UPDATE workflow_runs SET status = 'running', steps = '[]'::jsonb, finished_at = NULL WHERE id = $1",
    [runId]
  )
  await stopped.close()
  writeFileSync(join(outcomes, 'journal-1-0.jsonl'), JSON.stringify({
    runId,
    outcome: { status: 'completed', steps, result: null, usage: pending.json().usage, durationMs: 5 },
    strategy: 'parallel',
    storedSteps: []
  }) + '\n')

  const restarted = await build(t, { db: null, env })
  const stored = await restarted.inject({ url: `/api/coordinator/runs/${runId}`, headers: as('alice') })
  t.equal(stored.json().status, 'completed', 'the next start stored the journaled outcome')
  t.same(stored.json().steps, steps)
  t.same(entries(outcomes), [], 'and removed the journal it replayed')
})

t.test("the app on PGlite in a DATA_DIR: a step's start is journaled instead of written, read from this process, " +
  'replayed by the next start without overwriting a later state', async t => {
  const dataDir = tempDir(t)
  // Progress writes an hour apart: while step 1 runs, only the journal can hold its start.
  const env = { ...COORDINATOR_ENV, DATA_DIR: dataDir, COORDINATOR_POLL_MS: '3600000' }
  const outcomes = join(dataDir, 'run-outcomes')
  const offline = createOfflineProvider()
  let calls = 0
  let release!: () => void
  const held = new Promise<void>(resolve => { release = resolve })
  const provider: LlmProvider = {
    ...offline,
    async generate (request) {
      if (++calls === 2) await held // the second step's call waits
      return offline.generate(request)
    }
  }
  const app = await build(t, { db: null, env, appOptions: { llmProvider: provider } })
  const steps = [
    { agent: 'travel', method: 'searchFlights', input: { from: 'Cairo', to: 'Paris', date: '2030-05-01' } },
    { agent: 'travel', method: 'getVisaRequirements', input: { destination: 'Japan', nationality: 'Egyptian' } }
  ]
  const caller: Caller = { id: 'journal-caller', kind: 'api-key', role: 'user' }
  const handle = await app.coordinator.start({
    caller, kind: 'sequential', body: { steps }, spec: { strategy: 'sequential', steps }
  })
  const { runId } = handle
  const events: string[] = []
  handle.subscribe?.(event => events.push(`${event.event}:${event.data.index}`))
  const running = () => calls >= 2
  for (let i = 0; i < 2000 && !running(); i++) await new Promise(resolve => setTimeout(resolve, 5))
  t.equal(calls, 2, 'step 1 is running')
  t.ok(events.includes('step-started:1'), 'and its start was published')
  const journaled = entries(outcomes)
  t.match(journaled, [{ runId, progress: [{ index: 1, status: 'running' }] }], 'on disk in the journal')
  const row = async () =>
    (await app.db.query<{ steps: StepResult[] }>('SELECT steps FROM workflow_runs WHERE id = $1', [runId]))[0]
  t.equal((await row()).steps[1].status, 'pending', 'not written to the row')
  const read = await app.inject({ url: `/api/coordinator/runs/${runId}`, headers: as('admin') })
  t.same(read.json().steps.map((s: StepResult) => s.status), ['completed', 'running'], 'a read answers this process')

  release()
  const view = await handle.done
  t.equal(view.status, 'completed')
  // The outcome's row is written just after the answer, on PGlite's thread: under load, more than 100 turns later.
  const deadline = Date.now() + 15_000
  while (entries(outcomes).length > 0 && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 10))
  t.same(entries(outcomes), [], 'the outcome stored the steps and released the start')
  t.same((await row()).steps.map(s => s.status), ['completed', 'completed'])

  // A stop while step 1 ran: the row as it was then, the start only in the journal, beside a start of step 0
  // that a later write passed (released entries stay in a file that holds unreleased ones).
  await app.db.query(
    "UPDATE workflow_runs SET status = 'running', finished_at = NULL, steps = jsonb_set(steps, '{1}', $2::jsonb) " +
      'WHERE id = $1',
    [runId, JSON.stringify({ ...view.steps[1], status: 'pending', data: undefined })]
  )
  await app.close()
  const lines = [
    { runId, progress: [{ ...view.steps[0], status: 'running', data: undefined }] },
    ...journaled
  ]
  writeFileSync(join(outcomes, 'journal-1-0.jsonl'), lines.map(line => JSON.stringify(line)).join('\n') + '\n')
  const restarted = await build(t, { db: null, env })
  const stored = (await restarted.db.query<{ steps: StepResult[] }>(
    'SELECT steps FROM workflow_runs WHERE id = $1', [runId]))[0].steps
  t.equal(stored[0].status, 'completed', 'a replayed start does not overwrite the step a later write stored')
  t.same(stored[0].data, view.steps[0].data)
  t.equal(stored[1].status, 'running', 'the journaled start is in the row, for the sweep to mark interrupted')
  t.same(entries(outcomes), [], 'the journal replayed and removed')
})

// Fault scenarios against a private PostgreSQL (own port and data directory, test/faults/support.ts):
// stopped, frozen (SIGSTOP: the port accepts, nothing answers) and restarted during agent invokes and
// trip-package workflows. Callers get 503 AMK_DATABASE_UNAVAILABLE with Retry-After within about a
// second and never an internal address or driver message; the process recovers without a restart; runs
// in flight are stored exactly as their clients saw them, and every provider call of the invokes and
// workflows has one settled usage row (0 lost). The measured figures are printed.
import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import { build } from '../support.js'
import { needsServers, startPostgres, TRIP } from './support.js'
import { createOfflineProvider } from '../../src/llm/offline.js'
import type { LlmProvider } from '../../src/llm/types.js'
import type { RunView, StepResult } from '../../src/coordinator/types.js'

const KEY = 'amk_faults_database_key_000000001'
const skip = needsServers()

/** The offline provider; while `hold` is set, calls wait for `release()`. */
function holdingProvider () {
  const offline = createOfflineProvider()
  const state = { hold: false, waiting: 0, calls: 0, release: () => {} }
  let gate = Promise.resolve()
  const provider: LlmProvider = {
    ...offline,
    async generate (request) {
      state.calls++
      if (state.hold) { state.waiting++; await gate }
      return offline.generate(request)
    }
  }
  const holdCalls = () => {
    state.hold = true
    state.waiting = 0
    gate = new Promise(resolve => { state.release = () => { state.hold = false; resolve() } })
  }
  return { provider, state, holdCalls }
}

const invoke = (app: FastifyInstance) => app.inject({
  method: 'POST',
  url: '/api/agents/travel/getVisaRequirements',
  headers: { 'x-api-key': KEY, 'cache-control': 'no-cache' },
  payload: { destination: 'Kenya', nationality: 'Dutch' }
})

async function timed<T> (fn: () => Promise<T>): Promise<[T, number]> {
  const started = Date.now()
  const result = await fn()
  return [result, Date.now() - started]
}

/** Polls until an invoke answers 200; how long that took. */
async function recovery (app: FastifyInstance): Promise<number> {
  const started = Date.now()
  while ((await invoke(app)).statusCode !== 200) {
    if (Date.now() - started > 20_000) throw new Error('no recovery within 20 s')
    await sleep(50)
  }
  return Date.now() - started
}

t.test('PostgreSQL stopped, frozen and restarted under invokes and workflows', { skip }, async t => {
  const pg = await startPostgres()
  t.teardown(() => pg.close())
  const held = holdingProvider()
  const env = {
    DATABASE_URL: pg.url,
    VALID_API_KEYS: `${KEY}:user`,
    API_KEY_CACHE_TTL_MS: '0', // every request asks the database
    COORDINATOR_POLL_MS: '50',
    COORDINATOR_STALE_MS: '1000',
    RATE_LIMIT_OVERRIDES: JSON.stringify({
      global: 10_000,
      coordinator: 10_000,
      'travel.getVisaRequirements': 10_000,
      travel: 10_000
    })
  }
  const app = await build(t, { db: null, env, appOptions: { llmProvider: held.provider } })
  // A second replica whose callers are cached: its requests reach the run store itself.
  const cached = await build(t, { db: null, env: { ...env, API_KEY_CACHE_TTL_MS: '600000' } })
  const workflow = () =>
    cached.inject({
      method: 'POST',
      url: '/api/coordinator/workflow',
      headers: { 'x-api-key': KEY },
      payload: { workflowName: 'trip-package', input: TRIP }
    })
  const runId = (await workflow()).json().runId
  const readRun = () => cached.inject({ url: `/api/coordinator/runs/${runId}`, headers: { 'x-api-key': KEY } })
  t.equal((await invoke(app)).statusCode, 200, 'baseline')
  const secret = [String(pg.port), '127.0.0.1', 'ECONNREFUSED', 'timeout exceeded', 'terminat']
  const checkUnavailable = (res: Awaited<ReturnType<typeof invoke>>, label: string) => {
    t.equal(res.statusCode, 503, `${label}: 503`)
    t.equal(res.json().code, 'AMK_DATABASE_UNAVAILABLE', `${label}: the catalogue code`)
    t.ok(Number(res.headers['retry-after']) > 0, `${label}: Retry-After`)
    for (const word of secret) t.notOk(res.body.includes(word), `${label}: no "${word}" in the response`)
  }

  // 1. Stopped (fast shutdown: connections closed, then refused).
  await pg.stop('clean')
  const [stopped, stoppedMs] = await timed(() => invoke(app))
  checkUnavailable(stopped, 'stopped')
  const [again, againMs] = await timed(() => invoke(app))
  checkUnavailable(again, 'stopped, next request')
  checkUnavailable(await workflow(), 'stopped, workflow (run store)')
  checkUnavailable(await readRun(), 'stopped, run read (run store)')
  t.equal((await app.inject('/api/health/ready')).statusCode, 503, 'not ready')
  t.ok(stoppedMs < 1500, `stopped: 503 in ${stoppedMs} ms`)
  await pg.start()
  const stoppedRecovery = await recovery(app)
  t.equal((await app.inject('/api/health/ready')).statusCode, 200, 'ready again, no restart')

  // 2. Frozen: the port accepts connections, nothing answers.
  pg.freeze()
  const [frozen, frozenMs] = await timed(() => invoke(app))
  checkUnavailable(frozen, 'frozen')
  const [fast, fastMs] = await timed(() => invoke(app))
  checkUnavailable(fast, 'frozen, next request')
  const [frozenRun, frozenRunMs] = await timed(readRun)
  checkUnavailable(frozenRun, 'frozen, run read (run store)')
  t.ok(frozenRunMs < 3000, `frozen: run read 503 in ${frozenRunMs} ms`)
  t.ok(frozenMs < 2000, `frozen: first 503 in ${frozenMs} ms (about DATABASE_CONNECT_TIMEOUT_MS, 1000 ms)`)
  t.ok(fastMs < 500, `frozen: next 503 in ${fastMs} ms (fast path)`)
  pg.thaw()
  const frozenRecovery = await recovery(app)

  // 3. Workflows in flight while the database is stopped for longer than COORDINATOR_STALE_MS, then frozen.
  const stored = async (runId: string) => (await app.db.query<{ status: string, steps: StepResult[], error: unknown }>(
    'SELECT status, steps, error FROM workflow_runs WHERE id = $1', [runId]))[0]
  const brief = (steps: StepResult[]) => steps.map(s => [s.id, s.status, s.data])
  for (const fault of ['stop', 'freeze'] as const) {
    held.holdCalls()
    const replies = [1, 2, 3].map(() =>
      app.inject({
        method: 'POST',
        url: '/api/coordinator/workflow',
        headers: { 'x-api-key': KEY, 'cache-control': 'no-cache' },
        payload: { workflowName: 'trip-package', input: TRIP }
      })
    )
    while (held.state.waiting < 9) await sleep(20)
    if (fault === 'stop') await pg.stop('clean')
    else pg.freeze()
    await sleep(1500)
    held.state.release()
    const seen = (await Promise.all(replies)).map(r => r.json<RunView>())
    t.same(seen.map(v => v.status), ['completed', 'completed', 'completed'], `${fault}: the clients saw completed runs`)
    await sleep(500)
    if (fault === 'stop') await pg.start()
    else pg.thaw()
    const [, settledMs] = await timed(async () => {
      for (const view of seen) {
        while ((await stored(view.runId).catch(() => ({ status: 'running' }))).status === 'running') await sleep(50)
      }
    })
    await sleep(1500) // sweeps after the outage leave them alone
    for (const view of seen) {
      const row = await stored(view.runId)
      t.equal(row.status, 'completed', `${fault}: stored completed`)
      t.same(brief(row.steps), brief(view.steps), `${fault}: steps stored as the client saw them`)
    }
    t.comment(`${fault}: the three outcomes were stored ${settledMs} ms after the database came back`)
  }

  // 4. Usage: every provider call of this replica (invokes and workflow steps, before, during and after the
  // faults) has exactly one settled row once its buffer is replayed: count of calls = rows settled.
  const mine = async (status: string) => Number((await app.db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM usage_ledger WHERE instance_id = $1 AND status ${status}`,
    [app.usageLedger.instanceId]))[0].n)
  const deadline = Date.now() + 20_000
  while ((app.usageLedger.depth() > 0 || await mine("= 'pending'") > 0) && Date.now() < deadline) await sleep(100)
  const settled = await mine("IN ('success', 'error', 'cancelled', 'interrupted')")
  t.comment(`usage: ${held.state.calls} provider calls, ${settled} settled rows, ${held.state.calls - settled} lost`)
  t.ok(held.state.calls >= 9 * 2 + 3, 'the invokes and both workflow rounds called the provider')
  t.equal(settled, held.state.calls, '0 usage rows lost: one settled row per provider call')
  t.equal(await mine("= 'pending'"), 0, 'none left pending')

  t.comment(
    `stopped: first 503 in ${stoppedMs} ms, next in ${againMs} ms; recovered ${stoppedRecovery} ms after the restart`
  )
  t.comment(
    `frozen: first 503 in ${frozenMs} ms, next in ${fastMs} ms (other replica: ${frozenRunMs} ms); recovered ${frozenRecovery} ms after SIGCONT`
  )
})

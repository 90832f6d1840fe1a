// The service's start without an Idempotency-Key: the steps start while the run row is inserted (the insert is
// sent after their calls started, so that on PGlite it runs while they wait), yet nothing of the run (progress,
// outcome) is written before the row is in, the caller learns the run only once it is stored, and a failed
// insert fails the start, cancels the steps and writes nothing.
import t from 'tap'
import type { InvokeRequest, InvokeResult } from '../../src/agents/types.js'
import type { Caller } from '../../src/auth/roles.js'
import type { RunStore } from '../../src/coordinator/run-store.js'
import { createCoordinator } from '../../src/coordinator/service.js'
import type { Catalog, StartRequest } from '../../src/coordinator/types.js'

const caller: Caller = { id: 'alice', kind: 'api-key', role: 'user' }
const catalog: Catalog = { methods: () => ({ travel: ['plan'] }), validate: () => [] }
const request: StartRequest = {
  caller,
  kind: 'sequential',
  body: {},
  spec: { strategy: 'sequential', steps: [{ agent: 'travel', method: 'plan' }, { agent: 'travel', method: 'plan' }] }
}

/** A store whose insert settles when told to, logging what is written in which order. */
function gatedStore () {
  const log: string[] = []
  let settle!: (error?: Error) => void
  const store = {
    start: () => {
      log.push('insert')
      return new Promise((resolve, reject) => {
        settle = error => {
          log.push(error ? 'insert failed' : 'inserted')
          if (error) reject(error)
          else resolve({ created: true })
        }
      })
    },
    progress: async () => { log.push('progress') },
    finish: async () => { log.push('finish') },
    heartbeat: async () => [],
    purgeExpiredKeys: async () => {}
  } as unknown as RunStore
  return { store, log, settle: (error?: Error) => settle(error) }
}

function coordinator (store: RunStore, invoke: (request: InvokeRequest) => Promise<InvokeResult>) {
  return createCoordinator({
    agents: { invoke },
    catalog,
    store,
    settings: { stepTimeoutMs: 5000, pollMs: 60_000, staleMs: 120_000, idempotencyTtlSeconds: 60, joinTimeoutMs: 1000 }
  })
}

const until = async (what: () => boolean) => {
  while (!what()) await new Promise(resolve => setImmediate(resolve))
}

t.test('the steps start while the row is inserted; progress and outcome are written only once it is in', async t => {
  const { store, log, settle } = gatedStore()
  const service = coordinator(store, async () => {
    log.push('call')
    return { data: { ok: true }, cached: false, traceId: 'x' } as unknown as InvokeResult
  })
  let started = false
  const handle = service.start(request).then(h => { started = true; return h })
  // Both steps run (the second one's start is a progress write waiting on the insert) before the row is in.
  await until(() => log.filter(entry => entry === 'call').length === 2 && log.includes('insert'))
  t.equal(started, false, 'the caller does not get the run before it is stored')
  t.same(log, ['call', 'call', 'insert'], 'the insert is sent after the calls started; nothing else is written')
  settle()
  const view = await (await handle).done
  t.equal(view.status, 'completed')
  t.equal(log.indexOf('inserted'), 3)
  t.ok(log.slice(4).includes('finish'), 'the outcome is written after the row')
  t.ok(log.slice(4).every(entry => entry === 'progress' || entry === 'finish'), 'every write after the row')
  await service.close()
})

t.test('a failed insert fails the start, cancels the running step and writes nothing', async t => {
  const { store, log, settle } = gatedStore()
  const aborted: unknown[] = []
  const service = coordinator(store, request => new Promise((resolve, reject) => {
    log.push('call')
    request.signal!.addEventListener('abort', () => {
      aborted.push(request.signal!.reason)
      reject(request.signal!.reason)
    })
  }))
  const started = service.start(request)
  await until(() => log.includes('insert'))
  const failure = new Error('database unavailable')
  settle(failure)
  await t.rejects(started, failure, 'the start fails with the insert error')
  await until(() => service.activeCount() === 0)
  t.same(aborted, [failure], 'the running step was cancelled')
  t.same(log, ['call', 'insert', 'insert failed'], 'no progress and no outcome written')
  await service.close()
})

for (const landed of [true, false]) {
  t.test(`the outcome leaves out the steps progress writes stored in their final state (landed: ${landed})`, async t => {
    const written: number[][] = []
    let storedSteps: number[] | undefined
    let outcomeSteps: string[] = []
    const store = {
      start: async () => ({ created: true }),
      // landed false: the row was no longer running (marked interrupted elsewhere), so nothing was stored.
      progress: async (_runId: string, steps: Array<{ index: number }>) => {
        written.push(steps.map(s => s.index))
        return landed
      },
      finish: async (_id: string, outcome: { steps: Array<{ status: string }> }, _s: string, stored?: Set<number>) => {
        storedSteps = [...(stored ?? [])].sort()
        outcomeSteps = outcome.steps.map(s => s.status)
      },
      heartbeat: async () => [],
      purgeExpiredKeys: async () => {}
    } as unknown as RunStore
    const release: Array<() => void> = []
    const service = coordinator(store, () => new Promise(resolve => {
      release.push(() => resolve({ data: { ok: true }, cached: false, traceId: 'x' } as unknown as InvokeResult))
    }))
    const three: StartRequest = {
      ...request,
      spec: { strategy: 'sequential', steps: [0, 1, 2].map(() => ({ agent: 'travel', method: 'plan' })) }
    }
    const handle = await service.start(three)
    for (let i = 0; i < 3; i++) {
      await until(() => release.length === i + 1 && written.length === i)
      release[i]()
      // Steps 1 and 2 start with a write that also stores the step before them, finished.
      if (i < 2) await until(() => written.length === i + 1)
    }
    const view = await handle.done
    t.equal(view.status, 'completed')
    t.same(written, [[0, 1], [1, 2]])
    t.same(outcomeSteps, ['completed', 'completed', 'completed'])
    t.same(storedSteps, landed ? [0, 1] : [],
      landed ? 'steps 0 and 1 were stored finished; only step 2 goes with the outcome' : 'every step goes with it')
    await service.close()
  })
}

// Coordinator overhead (issue 16, acceptance 4): a 10-task parallel workflow against the same ten agent calls
// with Promise.all, and a 5-step sequential workflow against a plain loop over the same five calls (each call
// given the previous call's data as `context`, as the workflow does), over a provider that answers after 20 ms
// (the offline provider behind a 20 ms timer: BENCH_PROVIDER_MS). Both sides go through agents.invoke with the
// cache bypassed, so both write the usage ledger; the workflow adds the plan checks, the run row, its progress
// and its outcome. On PGlite (in a new data directory, as `npm start` runs it) and on PostgreSQL (a scratch
// database created on BENCH_POSTGRES_URL and dropped after), at 1 and 5 concurrent workflows. Contenders
// alternate in rounds (BENCH_COORDINATOR_ROUNDS, default 5) of BENCH_COORDINATOR_OPS workflows each (default
// 20); wall time is the p50 over every round, CPU per workflow (this process's process.cpuUsage(), PGlite
// included) the median of the rounds.
// Run alone: `node --import=tsx bench/coordinator.ts` (it then also prints its target rows); narrow it with
// BENCH_COORDINATOR_CONCURRENCY (default 1,5), BENCH_COORDINATOR_SHAPES (parallel,sequential) and
// BENCH_COORDINATOR_STORES (pglite,postgres).
import Fastify, { type FastifyInstance } from 'fastify'
import { mkdtempSync, rmSync } from 'node:fs'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { offlineBuilder } from '../src/agents/index.js'
import type { AgentName } from '../src/agents/types.js'
import app, { serverOptions } from '../src/app.js'
import type { Caller } from '../src/auth/roles.js'
import { loadConfig } from '../src/config.js'
import type { StepSpec, WorkflowSpec } from '../src/coordinator/types.js'
import { createOfflineProvider } from '../src/llm/offline.js'
import { sleep } from '../src/llm/retry.js'
import type { LlmProvider } from '../src/llm/types.js'
import { closeAll, formatTargets, scratchDatabase, type TargetRow } from './lib.js'

const CALLER: Caller = { id: 'bench-coordinator', kind: 'api-key', role: 'user' }

export const TASKS: StepSpec[] = [
  { agent: 'travel', method: 'searchFlights', input: { from: 'Cairo', to: 'Paris', date: '2030-05-01' } },
  {
    agent: 'travel',
    method: 'searchHotels',
    input: { destination: 'Lisbon', checkin: '2030-06-01', checkout: '2030-06-04' }
  },
  { agent: 'travel', method: 'generateItinerary', input: { destination: 'Kyoto', duration: 3 } },
  {
    agent: 'travel',
    method: 'getDestinationRecommendations',
    input: { budget: 3000, interests: ['food'], duration: 7, season: 'spring' }
  },
  { agent: 'travel', method: 'getVisaRequirements', input: { destination: 'Japan', nationality: 'Egyptian' } },
  { agent: 'content', method: 'generateBlogPost', input: { topic: 'Budget travel in Vietnam' } },
  { agent: 'content', method: 'generateSocialPosts', input: { topic: 'Our new Nile cruise', count: 3 } },
  { agent: 'content', method: 'researchTopic', input: { topic: 'Sustainable tourism', depth: 'quick' } },
  { agent: 'innovation', method: 'generateIdeas', input: { industry: 'travel', count: 3 } },
  {
    agent: 'innovation',
    method: 'validateIdea',
    input: { idea: 'Subscription boxes of Egyptian spices', targetMarket: 'home cooks' }
  }
]
/** The sequential workflow: five of the tasks, one after the other. */
export const STEPS: StepSpec[] = [TASKS[2], TASKS[5], TASKS[6], TASKS[8], TASKS[9]]

/** The offline provider answering after `ms` (a timer, like a network wait: no CPU while it waits). */
export function delayedProvider (ms: number): LlmProvider {
  const inner = createOfflineProvider({ build: offlineBuilder() })
  return {
    name: inner.name,
    check: () => inner.check(),
    async generate (request) {
      await sleep(ms, request.signal)
      return inner.generate(request)
    },
    async * stream (request) {
      await sleep(ms, request.signal)
      yield * inner.stream(request)
    }
  }
}

/** The app on PostgreSQL (`databaseUrl`), else on PGlite in `dataDir` (memory:// when none). */
export async function instance (providerMs: number, databaseUrl?: string, dataDir = 'memory://'): Promise<FastifyInstance> {
  const config = loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    DATA_DIR: dataDir,
    RATE_LIMIT_GLOBAL_MAX: '100000000',
    RATE_LIMIT_OVERRIDES: JSON.stringify({ coordinator: 100_000_000 }),
    ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {})
  })
  const server = Fastify(serverOptions(config, false))
  await server.register(app, { config, llmProvider: delayedProvider(providerMs) })
  await server.ready()
  return server
}

const invoke = (server: FastifyInstance, task: StepSpec, context?: unknown) =>
  server.agents.invoke({
    agent: task.agent as AgentName,
    method: task.method,
    input: context === undefined ? task.input! : { ...task.input!, context },
    caller: CALLER,
    noCache: true
  })

/** What one workflow does, called directly: Promise.all over the tasks, or a loop passing each result on. */
export const direct = {
  parallel: (server: FastifyInstance) => async () => {
    await Promise.all(TASKS.map(task => invoke(server, task)))
  },
  sequential: (server: FastifyInstance) => async () => {
    let previous: unknown
    for (const step of STEPS) previous = (await invoke(server, step, previous)).data
  }
}

/** One workflow through the coordinator, start to outcome; the spec is the same calls as the direct side's. */
const runWorkflow = (server: FastifyInstance, kind: 'parallel' | 'sequential') => async () => {
  const spec: WorkflowSpec = kind === 'parallel'
    ? { strategy: 'parallel', tasks: TASKS }
    : { strategy: 'sequential', steps: STEPS }
  const body = kind === 'parallel' ? { tasks: TASKS } : { steps: STEPS }
  const handle = await server.coordinator.start({ caller: CALLER, kind, body, spec, noCache: true })
  const run = await handle.done
  if (!run.success) throw new Error(`workflow ${run.status}: ${run.error?.message}`)
}

export const workflow = {
  parallel: (server: FastifyInstance) => runWorkflow(server, 'parallel'),
  sequential: (server: FastifyInstance) => runWorkflow(server, 'sequential')
}

interface Pass { latencies: number[], cpuUs: number, ops: number, loopP99Ms: number }

/**
 * `ops` workflows from `concurrency` workers: each one's wall time, this process's CPU over the pass, and the
 * event loop's delay (p99 of a 1 ms timer's lateness: what any other request on this process waited meanwhile).
 */
export async function pass (once: () => Promise<void>, ops: number, concurrency: number): Promise<Pass> {
  const latencies: number[] = []
  let left = ops
  const loop = monitorEventLoopDelay({ resolution: 1 })
  loop.enable()
  const cpu = process.cpuUsage()
  const worker = async () => {
    while (left-- > 0) {
      const started = performance.now()
      await once()
      latencies.push(performance.now() - started)
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  const used = process.cpuUsage(cpu)
  loop.disable()
  return { latencies, cpuUs: used.user + used.system, ops, loopP99Ms: loop.percentile(99) / 1e6 }
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]
}

interface Cell {
  store: string
  shape: 'parallel' | 'sequential'
  concurrency: number
  directMs: number
  workflowMs: number
  directCpuMs: number
  workflowCpuMs: number
  directLoopMs: number
  workflowLoopMs: number
}

/** Alternating rounds of the direct calls and the workflow, one shape and concurrency on one server. */
async function cell (
  server: FastifyInstance,
  store: string,
  shape: 'parallel' | 'sequential',
  concurrency: number,
  rounds: number,
  ops: number
): Promise<Cell> {
  const contenders = [direct[shape](server), workflow[shape](server)]
  for (const once of contenders) await pass(once, Math.max(concurrency, 5), concurrency) // warm-up
  const passes: Pass[][] = [[], []]
  for (let round = 0; round < rounds; round++) {
    // Alternate which goes first, so a neighbour's burst does not always land on the same one.
    const order = round % 2 === 0 ? [0, 1] : [1, 0]
    for (const i of order) passes[i].push(await pass(contenders[i], ops, concurrency))
  }
  const p50 = (i: number) => median(passes[i].flatMap(p => p.latencies))
  const cpu = (i: number) => median(passes[i].map(p => p.cpuUs / p.ops)) / 1000
  const loop = (i: number) => median(passes[i].map(p => p.loopP99Ms))
  return {
    store,
    shape,
    concurrency,
    directMs: p50(0),
    workflowMs: p50(1),
    directCpuMs: cpu(0),
    workflowCpuMs: cpu(1),
    directLoopMs: loop(0),
    workflowLoopMs: loop(1)
  }
}

const fixed = (value: number, digits = 1) => value.toFixed(digits)
const ratio = (a: number, b: number) => Math.round((a / b) * 100) / 100

function table (cells: Cell[]): string {
  const header = [
    'store', 'workflow', 'concurrent', 'direct p50 ms', 'workflow p50 ms', 'time ×',
    'direct CPU ms', 'workflow CPU ms', 'CPU ×', 'loop delay p99 ms, direct / workflow'
  ]
  const lines = cells.map(c => [
    c.store,
    c.shape === 'parallel' ? '10-task parallel vs Promise.all' : '5-step sequential vs loop',
    String(c.concurrency),
    fixed(c.directMs),
    fixed(c.workflowMs),
    `${ratio(c.workflowMs, c.directMs).toFixed(2)}×`,
    fixed(c.directCpuMs, 2),
    fixed(c.workflowCpuMs, 2),
    `${ratio(c.workflowCpuMs, c.directCpuMs).toFixed(2)}×`,
    `${fixed(c.directLoopMs)} / ${fixed(c.workflowLoopMs)}`
  ])
  const rule = header.map((_, i) => (i < 2 ? '---' : '---:'))
  return [header, rule, ...lines].map(cells => `| ${cells.join(' | ')} |`).join('\n')
}

function targetsOf (cells: Cell[]): TargetRow[] {
  const rows: TargetRow[] = []
  for (const c of cells) {
    const peer = c.shape === 'parallel' ? 'Promise.all' : 'plain loop'
    const what = `${c.store}: ${c.shape === 'parallel' ? '10-task parallel' : '5-step sequential'} workflow, ` +
      `20 ms provider, ${c.concurrency} at a time`
    const time = ratio(c.workflowMs, c.directMs)
    rows.push({
      what: `${what}: wall time p50`,
      measured: `${fixed(c.workflowMs)} ms`,
      peer: `${peer} ${fixed(c.directMs)} ms`,
      ratio: `${time.toFixed(2)}×`,
      target: `≤ 1.1× ${peer}`,
      met: c.workflowMs <= c.directMs * 1.1
    })
    rows.push({
      what: `${what}: CPU per workflow`,
      measured: `${fixed(c.workflowCpuMs, 2)} ms`,
      peer: `direct calls ${fixed(c.directCpuMs, 2)} ms`,
      ratio: `${ratio(c.workflowCpuMs, c.directCpuMs).toFixed(2)}×`,
      target: '≤ 3× direct',
      met: c.workflowCpuMs <= c.directCpuMs * 3
    })
  }
  return rows
}

export async function run (): Promise<{ title: string, table: string, notes: string[], targets: TargetRow[] }> {
  const providerMs = Number(process.env.BENCH_PROVIDER_MS ?? 20)
  const rounds = Math.max(1, Number(process.env.BENCH_COORDINATOR_ROUNDS ?? 5))
  const ops = Math.max(1, Number(process.env.BENCH_COORDINATOR_OPS ?? 20))
  const levels = (process.env.BENCH_COORDINATOR_CONCURRENCY ?? '1,5').split(',').map(Number).filter(n => n > 0)
  const shapes = (['parallel', 'sequential'] as const)
    .filter(s => (process.env.BENCH_COORDINATOR_SHAPES ?? 'parallel,sequential').split(',').includes(s))
  const stores = (process.env.BENCH_COORDINATOR_STORES ?? 'pglite,postgres').split(',')
  const cells: Cell[] = []
  const measureStore = async (store: string, server: FastifyInstance) => {
    for (const concurrency of levels) {
      for (const shape of shapes) {
        cells.push(await cell(server, store, shape, concurrency, rounds, ops))
      }
    }
  }

  if (stores.includes('pglite')) {
    // In a new data directory, as `npm start` runs it (its usage journal is not used in memory).
    const dataDir = mkdtempSync(join(tmpdir(), 'amk-bench-coordinator-'))
    let pglite: FastifyInstance | null = null
    try {
      pglite = await instance(providerMs, undefined, dataDir)
      await measureStore('PGlite', pglite)
    } finally {
      await closeAll(pglite)
      rmSync(dataDir, { recursive: true, force: true })
    }
  }
  const scratch = stores.includes('postgres') ? await scratchDatabase(`amk_bench_coordinator_${process.pid}`) : null
  if (scratch) {
    let postgres: FastifyInstance | null = null
    try {
      postgres = await instance(providerMs, scratch.url)
      await measureStore('PostgreSQL', postgres)
    } finally {
      await closeAll(postgres)
      await scratch.drop()
    }
  }
  return {
    title: `Coordinator overhead: workflows vs the same agent calls made directly (${providerMs} ms provider)`,
    table: table(cells),
    notes: [
      `Provider: the offline provider answering after ${providerMs} ms. Direct = the same agents.invoke calls ` +
        '(cache bypassed, usage-ledger row per call) with Promise.all, or a loop passing each result on as ' +
        '`context`; workflow = coordinator.start() … done (plan checks, run row, progress, outcome). ' +
        `${rounds} alternating rounds of ${ops} workflows per contender; time is the p50 of every workflow, CPU the ` +
        "median per round of this process's process.cpuUsage() per workflow (PGlite runs in this process, on a " +
        "thread of its own in a new data directory as `npm start` runs it, and its CPU counts; PostgreSQL's does " +
        'not), loop delay the median per round of the p99 lateness of a 1 ms timer: what any other request on ' +
        'this process waited meanwhile.',
      ...(scratch || !stores.includes('postgres')
        ? []
        : ['PostgreSQL (BENCH_POSTGRES_URL) not reachable: its rows were skipped.'])
    ],
    targets: targetsOf(cells)
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const result = await run()
  process.stdout.write(`\n## ${result.title}\n\n${result.table}\n${result.notes.map(n => `\n${n}\n`).join('')}`)
  process.stdout.write(`\n${formatTargets(result.targets.map(t => ({ module: 'coordinator', ...t })))}\n`)
  process.exit(0)
}

// Agent invoke overhead through the offline provider, cache off: the provider called directly in-process
// (the baseline: building the answer is all the "model" work there is), agents.invoke() in-process (input
// validation, prompt, output validation, usage-ledger row on PGlite, metrics, hooks), and
// POST /api/agents/travel/searchFlights over HTTP (plus auth, rate limits, JSON); a cache-hit row for scale.
// Run alone: `node --import=tsx bench/invoke.ts` (BENCH_DURATION=s, BENCH_CONNECTIONS=n).
import Fastify, { type FastifyInstance } from 'fastify'
import { pathToFileURL } from 'node:url'
import app, { serverOptions } from '../src/app.js'
import type { Caller } from '../src/auth/roles.js'
import { loadConfig } from '../src/config.js'
import { closeAll, loadInProcess, measure, printTable, settings, withRatios, type BenchResult } from './lib.js'

const KEY = 'amk_bench_invoke_user_key_0123456789'
const CALLER: Caller = { id: 'bench-invoke', kind: 'api-key', role: 'user' }
const INPUT = { from: 'Cairo', to: 'Paris', date: '2030-05-01', passengers: 2 }
const HUGE = 100_000_000

async function instance (): Promise<FastifyInstance> {
  const config = loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    DATA_DIR: 'memory://',
    VALID_API_KEYS: `${KEY}:user`,
    // Limits stay on (their cost is part of the path) but high enough never to refuse.
    RATE_LIMIT_GLOBAL_MAX: String(HUGE),
    RATE_LIMIT_OVERRIDES: JSON.stringify({ travel: HUGE, 'travel.searchFlights': HUGE })
  })
  const server = Fastify(serverOptions(config, false))
  await server.register(app, { config })
  await server.ready()
  return server
}

export async function run (): Promise<BenchResult> {
  const { duration, connections } = settings()
  const server = await instance()
  try {
    const method = server.agents.definitions.travel.methods.searchFlights
    const { system, prompt } = method.prompt({ ...INPUT, class: 'economy' })
    const request = {
      model: 'offline',
      system,
      prompt,
      responseSchema: method.output,
      task: { agent: 'travel', method: 'searchFlights', input: { ...INPUT, class: 'economy' } }
    }
    const http = { path: '/api/agents/travel/searchFlights', method: 'POST' as const, body: JSON.stringify(INPUT) }
    const rows = withRatios([
      {
        scenario: 'offline provider.generate() in-process (baseline)',
        ...(await loadInProcess(() => server.llm.provider.generate(request), duration, connections))
      },
      {
        scenario: 'agents.invoke() in-process, cache off (validation, ledger, metrics)',
        ...(await loadInProcess(
          () =>
            server.agents.invoke({
              agent: 'travel',
              method: 'searchFlights',
              input: INPUT,
              caller: CALLER,
              noCache: true
            }),
          duration,
          connections
        ))
      },
      {
        scenario: 'POST /api/agents/travel/searchFlights, Cache-Control: no-cache',
        ...(await measure(server, {
          ...http,
          headers: { 'content-type': 'application/json', 'x-api-key': KEY, 'cache-control': 'no-cache' }
        }))
      },
      {
        scenario: 'POST /api/agents/travel/searchFlights, cache hits (memory)',
        ...(await measure(server, { ...http, headers: { 'content-type': 'application/json', 'x-api-key': KEY } }))
      }
    ])
    const ledgerRows = (await server.db.query<{ n: number }>('SELECT count(*)::int AS n FROM usage_ledger'))[0].n
    return {
      title: 'Agent invoke overhead over the offline provider (travel.searchFlights)',
      rows,
      notes: [
        'The offline provider answers instantly, so the ratios are the whole cost of the service and HTTP layers; ' +
          'with a real model (hundreds of ms to seconds per call) this overhead is negligible. ' +
          `${ledgerRows} usage-ledger rows were written (PGlite in memory), one per uncached call.`,
        'Load generators share the process (and, here, the machine) with the server: ' +
          'compare ratios, not absolute numbers, across machines.'
      ]
    }
  } finally {
    await closeAll(server)
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const result = await run()
  printTable(result.rows, result.title, result.notes)
}

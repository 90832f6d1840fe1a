// `npm run bench`: runs every scenario module in bench/ that exports run(), one after the other, and prints
// a table per module. `--only status` (repeatable, or comma-separated) picks modules by file name;
// BENCH_DURATION (seconds per scenario, default 5), BENCH_CONNECTIONS (default 50) and BENCH_ROUNDS (rounds
// of compare(), default 1) tune the load; amplification runs BENCH_AMP_SECONDS per phase (default 30).
import { readdir } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import { formatTable, formatTargets, settings, type BenchResult, type BenchRow, type TargetRow } from './lib.js'

const HERE = new URL('./', import.meta.url)
const NOT_SCENARIOS = new Set(['lib', 'run'])

/** A scenario whose figures are not throughput rows prints its own table (e.g. amplification). */
type OwnTable = { title?: string, table: string, notes?: string[], targets?: TargetRow[] }
type Scenario = { run?: () => Promise<BenchResult | BenchRow[] | OwnTable> }

async function scenarioNames (): Promise<string[]> {
  const files = await readdir(HERE)
  return files
    .filter(f => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .map(f => f.slice(0, -3))
    .filter(n => !NOT_SCENARIOS.has(n))
    .sort()
}

async function main () {
  const { values } = parseArgs({ options: { only: { type: 'string', multiple: true } } })
  const available = await scenarioNames()
  const only = (values.only ?? []).flatMap(v => v.split(',')).map(v => v.trim()).filter(Boolean)
  const unknown = only.filter(name => !available.includes(name))
  if (unknown.length > 0) {
    process.stderr.write(`Unknown scenario(s): ${unknown.join(', ')}. Available: ${available.join(', ')}\n`)
    process.exit(2)
  }
  const chosen = only.length > 0 ? available.filter(name => only.includes(name)) : available
  const { duration, connections } = settings()
  process.stdout.write(
    `# Benchmarks: ${chosen.join(', ')} — ${duration} s per scenario, ` +
    `${connections} connections, Node ${process.version}\n`
  )

  let failed = 0
  const targets: Array<TargetRow & { module: string }> = []
  for (const name of chosen) {
    const module = await import(new URL(`${name}.ts`, HERE).href) as Scenario
    if (typeof module.run !== 'function') continue
    try {
      const result = await module.run()
      const { title, table, notes = [] } = Array.isArray(result)
        ? { title: name, table: formatTable(result) }
        : 'table' in result ? result : { ...result, table: formatTable(result.rows) }
      process.stdout.write(`\n## ${title ?? name}\n\n${table}\n${notes.map(note => `\n${note}\n`).join('')}`)
      if (!Array.isArray(result)) targets.push(...(result.targets ?? []).map(row => ({ module: name, ...row })))
    } catch (error) {
      failed++
      process.stderr.write(`\n## ${name} failed: ${(error as Error).stack ?? error}\n`)
    }
  }
  if (targets.length > 0) {
    const missed = targets.filter(row => !row.met).length
    process.stdout.write(`\n## Targets (issue 16), this run\n\n${formatTargets(targets)}\n\n` +
      `${targets.length - missed} of ${targets.length} targets met.\n`)
  }
  // Some scenarios leave pools or timers behind (PGlite, Redis reconnects); the run is over.
  process.exit(failed > 0 ? 1 : 0)
}

await main()

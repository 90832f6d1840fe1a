// The served /openapi.json passes Redocly's recommended ruleset (redocly.yaml) and Spectral's `oas` ruleset
// (.spectral.yaml) with 0 errors; the only warnings are the ones those files justify. Prints the counts.
import t, { type Test } from 'tap'
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { build } from '../support.js'

const run = promisify(execFile)
const ROOT = new URL('../../', import.meta.url).pathname
const bin = (name: string) => join(ROOT, 'node_modules', '.bin', name)
// No telemetry or update checks (the machines have no network; a check would only wait).
const ENV = { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true', NO_COLOR: '1' }

/** Warnings redocly.yaml explains, by rule. */
const JUSTIFIED_REDOCLY = new Set(['no-ambiguous-paths'])

interface RedoclyReport {
  totals: { errors: number; warnings: number }
  problems: Array<{ ruleId: string; severity: string; message: string }>
}
interface SpectralResult { code: string, severity: number, message: string, path: string[] }

async function servedDocument (t: Test): Promise<string> {
  const app = await build(t)
  const dir = await mkdtemp(join(tmpdir(), 'amk-openapi-lint-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'openapi.json')
  await writeFile(file, (await app.inject('/openapi.json')).body)
  return file
}

/** The command's stdout, also when it exits non-zero (the linters exit 1 when they find errors). */
async function output (command: string, args: string[]): Promise<string> {
  try {
    return (await run(command, args, { cwd: ROOT, env: ENV, maxBuffer: 64 * 1024 * 1024 })).stdout
  } catch (error) {
    const failed = error as { stdout?: string, stderr?: string }
    if (!failed.stdout) throw new Error(`${command} failed: ${failed.stderr ?? String(error)}`)
    return failed.stdout
  }
}

t.test('Redocly (recommended): 0 errors, only justified warnings', async t => {
  const file = await servedDocument(t)
  const report: RedoclyReport = JSON.parse(
    await output(bin('redocly'), ['lint', file, '--config', join(ROOT, 'redocly.yaml'), '--format=json'])
  )
  t.comment(`redocly: ${report.totals.errors} errors, ${report.totals.warnings} warnings`)
  for (const problem of report.problems) t.comment(`  ${problem.severity} ${problem.ruleId}: ${problem.message}`)
  t.equal(report.totals.errors, 0, 'no errors')
  const unjustified = report.problems.filter(p => !JUSTIFIED_REDOCLY.has(p.ruleId))
  t.same(unjustified.map(p => `${p.ruleId}: ${p.message}`), [], 'every warning is justified in redocly.yaml')
})

t.test('Spectral (oas): 0 errors, 0 unjustified warnings', async t => {
  const file = await servedDocument(t)
  const out = join(file, '..', 'spectral.json')
  await output(bin('spectral'), [
    'lint',
    file,
    '--ruleset',
    join(ROOT, '.spectral.yaml'),
    '-f',
    'json',
    '-o',
    out,
    '--quiet'
  ])
  const results: SpectralResult[] = JSON.parse(await readFile(out, 'utf8'))
  const errors = results.filter(r => r.severity === 0)
  const warnings = results.filter(r => r.severity === 1)
  t.comment(
    `spectral: ${errors.length} errors, ${warnings.length} warnings, ${results.length - errors.length - warnings.length} info/hints`
  )
  for (const r of results) t.comment(`  ${r.severity} ${r.code} at ${r.path.join('.')}: ${r.message}`)
  t.same(errors.map(r => `${r.code} at ${r.path.join('.')}`), [], 'no errors')
  // Rules whose warnings are acceptable are turned off in .spectral.yaml, with the reason next to them.
  t.same(warnings.map(r => `${r.code} at ${r.path.join('.')}`), [], 'no warnings left unjustified')
})

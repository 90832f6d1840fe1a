// `npm run fuzz`: the hostile-input fuzzer of test/fuzz at a larger count, on demand. Builds the app
// in-process (in-memory PGlite, offline LLM, rate limits raised), sends FUZZ_COUNT / --count requests
// (default 50,000) generated from /openapi.json with --seed / FUZZ_SEED (random when unset; printed), then
// prints requests, by status, >= 500, shape violations, by operation and one repro per failure class.
// Exit code 1 when any request failed or an error body exceeded 64 KB.
// Example: `npm run fuzz -- --count 100000 --seed 42`.
import { parseArgs } from 'node:util'
import { randomInt } from 'node:crypto'
import { buildFuzzApp, CALLERS, formatReport, openApiOf } from '../test/fuzz/fuzz-app.js'
import { fuzz, MAX_ERROR_BODY } from '../test/fuzz/runner.js'

const { values } = parseArgs({
  options: {
    count: { type: 'string' },
    seed: { type: 'string' },
    concurrency: { type: 'string' },
    classes: { type: 'string' }
  }
})

const count = Number(values.count ?? process.env.FUZZ_COUNT ?? 50_000)
const seed = Number(values.seed ?? process.env.FUZZ_SEED ?? randomInt(2 ** 31))
if (!Number.isInteger(count) || count < 1 || !Number.isInteger(seed)) {
  process.stderr.write('usage: npm run fuzz -- [--count N] [--seed N] [--concurrency N] [--classes N]\n')
  process.exit(2)
}
process.stdout.write(`fuzzing with seed ${seed} (repeat with --seed ${seed}), ${count} requests…\n`)

const app = await buildFuzzApp()
try {
  const report = await fuzz(app, await openApiOf(app), {
    seed,
    count,
    callers: CALLERS,
    bodyLimit: app.config.BODY_LIMIT,
    concurrency: Number(values.concurrency ?? 8)
  })
  process.stdout.write(formatReport(report, Number(values.classes ?? 40)) + '\n')
  const oversized = report.largestErrorBody > MAX_ERROR_BODY
  if (oversized) process.stdout.write(`an error body of ${report.largestErrorBody} bytes exceeds ${MAX_ERROR_BODY}\n`)
  process.exitCode = report.failures.length > 0 || oversized ? 1 : 0
} finally {
  await app.close()
}
// Stray handles (PGlite, timers) must not keep a finished run alive.
process.exit(process.exitCode ?? 0)

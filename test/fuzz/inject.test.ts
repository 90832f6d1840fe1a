// Issue 11, hostile input: at least 5,000 generated requests (FUZZ_COUNT) driven by the served
// /openapi.json, spread over every operation for an admin and a user caller, in-process. No answer may be
// a 5xx (a health probe's documented 503 excepted, counted apart), every non-2xx must be in the error
// shape and at most 64 KB, and none may hang. Seeded (FUZZ_SEED, printed); a failure prints one repro
// per failure class.
import t from 'tap'
import { buildFuzzApp, CALLERS, formatReport, openApiOf } from './fuzz-app.js'
import { fuzz, MAX_ERROR_BODY } from './runner.js'
import { operationsOf } from './openapi.js'

const seed = Number(process.env.FUZZ_SEED ?? 20_261_202)
const count = Math.max(5000, Number(process.env.FUZZ_COUNT ?? 5000))

t.test(`fuzzing every operation with ${count} requests (seed ${seed})`, async t => {
  const app = await buildFuzzApp()
  t.teardown(() => app.close())
  const doc = await openApiOf(app)
  const operations = operationsOf(doc)
  t.ok(operations.length >= 60, `the document lists every operation (${operations.length})`)

  const report = await fuzz(app, doc, {
    seed,
    count,
    callers: CALLERS,
    bodyLimit: app.config.BODY_LIMIT,
    concurrency: 8,
    timeoutMs: 20_000
  })
  t.comment(formatReport(report))

  t.equal(report.requests, count, 'every request was sent')
  for (const operation of operations) {
    const figures = report.byOperation[operation.id]
    t.ok(figures?.byCaller.admin && figures.byCaller.user, `${operation.id} was called by the admin and the user`)
  }
  t.equal(report.serverErrors, 0, 'no response >= 500')
  t.equal(report.shapeViolations, 0, 'every non-2xx is in the error shape')
  t.equal(report.timeouts, 0, 'no request hung')
  t.equal(report.byStatus['inject-error'] ?? 0, 0, 'no request broke the server')
  // DESIGN §15: error lists are bounded, so hostile input cannot make an error answer (and its log line) huge.
  t.ok(
    report.largestErrorBody <= MAX_ERROR_BODY,
    `every error body is at most 64 KB (largest ${report.largestErrorBody} bytes)`
  )
})

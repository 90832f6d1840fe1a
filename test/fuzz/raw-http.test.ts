// Issue 11, hostile input over a real socket: a few hundred malformed HTTP requests (bad request lines,
// header overflow > 16 KB, invalid header characters, bad chunked encoding, conflicting lengths, slow
// clients) to a listening server. Wherever Node lets the server answer, the answer is below 500 and in
// the error shape with requestId = x-request-id; no connection is left hanging.
import t from 'tap'
import { buildFuzzApp, ADMIN_KEY } from './fuzz-app.js'
import { shapeProblem } from './runner.js'
import { rawCases, sendRaw, type RawOutcome } from './raw-http.js'

const seed = Number(process.env.FUZZ_SEED ?? 20_261_202)
const COUNT = 300

t.test(`${COUNT} malformed HTTP requests over a socket (seed ${seed})`, async t => {
  // Short receive timeouts, so the slow clients are cut (408) within seconds rather than the default 10–30 s.
  const app = await buildFuzzApp({ HEADERS_TIMEOUT_MS: '1000', REQUEST_TIMEOUT_MS: '2000' })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  const port = typeof address === 'object' && address ? address.port : 0

  const cases = rawCases(seed, COUNT, ADMIN_KEY)
  const outcomes: RawOutcome[] = []
  let next = 0
  await Promise.all(Array.from({ length: 10 }, async () => {
    while (next < cases.length) outcomes.push(await sendRaw(port, cases[next++], 10_000))
  }))

  const problems: string[] = []
  const byCategory: Record<string, Record<string, number>> = {}
  for (const outcome of outcomes) {
    const figures = byCategory[outcome.rawCase.name] ??= {}
    const statuses = outcome.answers.map(a => String(a.status))
    for (const key of statuses.length ? statuses : [outcome.timedOut ? 'hung' : 'closed-without-answer']) { figures[key] = (figures[key] ?? 0) + 1 }
    const where = `${outcome.rawCase.name}: ${JSON.stringify(outcome.rawCase.bytes.toString('latin1').slice(0, 160))}`
    if (outcome.rawCase.name === 'node answers' && outcome.answers.length === 0) {
      problems.push(`${where} → no answer (Node's own bare answer or a dropped connection)`)
    }
    if (outcome.timedOut) { problems.push(`${where} → no answer and not closed within 10 s (got ${JSON.stringify(outcome.raw)})`) }
    for (const answer of outcome.answers) {
      if (answer.status >= 500) problems.push(`${where} → ${answer.status}: ${answer.body}`)
      if (answer.status >= 400) {
        const problem = shapeProblem(answer.status, answer.headers, answer.body)
        if (problem) problems.push(`${where} → ${answer.status} not in the error shape (${problem}): ${answer.body}`)
      }
    }
  }
  t.comment(`raw requests by category and answer: ${JSON.stringify(byCategory)}`)
  t.equal(outcomes.length, COUNT, 'every case was sent')
  t.ok(outcomes.filter(o => o.answers.length > 0).length > COUNT / 2, 'the server answered most of them')
  t.same(
    problems.slice(0, 30),
    [],
    `every answer is below 500, in the error shape, and nothing hangs (${problems.length} problems)`
  )
})

// Issue 12, problem 8: a burst of stream opens while the database pool is saturated (every pooled
// connection busy for seconds). What a stream open asks the database — the API-key lookup, the budget
// check before the stream opens — is one pooled statement each, never held across an await; when no
// connection is free in time the caller gets 503 with Retry-After (or 429 for a per-caller cap or the
// failed-key throttle), never a 500, and the streams that opened end normally.
import t from 'tap'
import { build, needs, postgresDatabase } from '../support.js'
import { openSse } from './sse-client.js'
import { listen, ROUTES, STREAM_ENV } from './support.js'

const CALLERS = 10
const PER_CALLER = 12 // two over MAX_CONCURRENT_STREAMS_PER_CALLER's default of 10
const keyOf = (i: number) => `amk_burst_caller_${String(i).padStart(3, '0')}_0123456789abcdef`

t.test(
  'a burst of stream opens against a saturated pool: only 200, 429 and 503 (with Retry-After)',
  { skip: needs('postgres') },
  async t => {
    const app = await build(t, {
      db: null,
      env: {
        ...STREAM_ENV,
        DATABASE_URL: await postgresDatabase(),
        DATABASE_POOL_MAX: '4',
        VALID_API_KEYS: Array.from({ length: CALLERS }, (_, i) => `${keyOf(i)}:premium`).join(',')
      }
    })
    const url = await listen(app)
    const open = (caller: number) =>
      openSse(`${url}/api/stream/blog`, {
        headers: { 'x-api-key': keyOf(caller) },
        body: { ...ROUTES.blog.input, topic: `Burst ${caller}` }
      })
    // Half the callers were here before (their key and budget lookups are cached); half arrive now.
    for (let i = 0; i < CALLERS / 2; i++) t.equal((await open(i)).status, 200)

    // Every connection the pool can have is busy for six seconds (longer than any pool wait).
    const hold = Promise.allSettled(Array.from({ length: 10 }, () => app.db.query('SELECT pg_sleep(6)')))
    await new Promise(resolve => setTimeout(resolve, 200))
    const started = Date.now()
    const streams = await Promise.all(Array.from({ length: CALLERS * PER_CALLER }, (_, i) => open(i % CALLERS)))
    const statuses: Record<number, number> = {}
    for (const stream of streams) statuses[stream.status] = (statuses[stream.status] ?? 0) + 1
    const answeredMs = Date.now() - started
    const opened = streams.filter(s => s.status === 200)
    const ends = await Promise.all(opened.map(async s => (await s.finished()).at(-1)))
    const refused = await Promise.all(
      streams
        .filter(s => s.status !== 200)
        .map(async s => {
          await s.done
          return { status: s.status, retryAfter: s.headers['retry-after'], body: JSON.parse(s.raw) }
        })
    )
    await hold
    t.comment(
      `${streams.length} stream opens with every pooled connection busy: ${JSON.stringify(statuses)} answered within ${answeredMs} ms; ` +
        `${ends.filter(e => e?.event === 'complete').length} of ${opened.length} opened streams completed; refusals ${JSON.stringify(refused.reduce<Record<string, number>>((n, r) => ({ ...n, [r.body.code]: (n[r.body.code] ?? 0) + 1 }), {}))}`
    )

    t.same(
      Object.keys(statuses).filter(s => !['200', '429', '503'].includes(s)),
      [],
      'only 200, 429 and 503'
    )
    t.ok(opened.length > 0, 'callers whose lookups are cached still stream')
    t.ok(
      ends.every(e => e?.event === 'complete' || (e?.event === 'error' && e.data.code !== 'AMK_INTERNAL')),
      'opened streams end normally'
    )
    for (const r of refused) {
      t.ok(r.retryAfter, `${r.status} ${r.body.code} carries Retry-After`)
      t.match(r.body, { statusCode: r.status, code: /^AMK_/, requestId: String })
    }
  }
)

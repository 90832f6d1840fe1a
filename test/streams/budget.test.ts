// A spent budget on a stream route is refused before the stream opens, like an invoke route: 429
// AMK_BUDGET_EXCEEDED with Retry-After in the error shape (not 200 and an error event). And `recoverable`
// means "a resume will continue": true only for SHUTTING_DOWN, false for every error that ends the log.
import t from 'tap'
import { BudgetExceededError, LlmUnavailableError, ValidationError, withDetails } from '../../src/errors.js'
import { MemoryEventLog } from '../../src/streams/memory-event-log.js'
import { runGeneration } from '../../src/streams/generation.js'
import { parseSse } from './sse-client.js'
import { blogSession, buildStreams, premium, ROUTES } from './support.js'

t.test(
  'a spent budget: stream routes answer 429 AMK_BUDGET_EXCEEDED with Retry-After before opening, as invoke routes do',
  async t => {
    const app = await buildStreams(t, { env: { BUDGETS: '{"premium":{"tokens":1}}' } })
    const first = await app.inject({
      method: 'POST',
      url: '/api/stream/blog',
      headers: premium,
      payload: ROUTES.blog.input
    })
    t.equal(first.statusCode, 200, 'the first stream runs (the budget was not spent yet)')
    t.equal(parseSse(first.body).frames.at(-1)?.event, 'complete')

    const invoke = await app.inject({
      method: 'POST',
      url: '/api/agents/content/generateBlogPost',
      headers: premium,
      payload: { ...ROUTES.blog.input, topic: 'Slow travel in Laos' }
    })
    t.equal(invoke.statusCode, 429, 'the invoke route refuses')
    const refusals = [
      await app.inject({
        method: 'POST',
        url: '/api/stream/blog',
        headers: premium,
        payload: { ...ROUTES.blog.input, topic: 'Slow travel in Laos' }
      }),
      await app.inject({ url: `/api/stream/itinerary?${ROUTES.itinerary.query}`, headers: premium }),
      await app.inject({ method: 'POST', url: '/api/stream/recommendations', headers: premium, payload: ROUTES.recommendations.input }),
      await app.inject({ url: `/api/stream/social?${ROUTES.social.query}`, headers: premium })
    ]
    t.equal(refusals.length, Object.keys(ROUTES).length, 'all four stream routes')
    for (const res of refusals) {
      t.equal(res.statusCode, 429, 'the stream route refuses too')
      t.match(res.headers['content-type'], /^application\/json/, 'a JSON error, no stream opened')
      // Until the budget resets: the same moment as the invoke route's, in whole seconds counted a little later
      // (a second boundary may fall between the two answers).
      const waited = Number(invoke.headers['retry-after']) - Number(res.headers['retry-after'])
      t.ok(waited >= 0 && waited <= 1, `Retry-After: until the budget resets (${res.headers['retry-after']} s)`)
      t.match(res.json(), {
        statusCode: 429,
        code: 'AMK_BUDGET_EXCEEDED',
        error: 'Too Many Requests',
        message: /budget spent/,
        requestId: String,
        details: { scope: 'budget', dimension: 'tokens', limit: 1 }
      })
    }
    t.equal(app.streams.registry.active(), 0, 'nothing runs')
  }
)

t.test('recoverable: an error that ends the log is never recoverable (a resume would get 204)', async t => {
  const log = new MemoryEventLog({ ttlMs: 60_000, maxEvents: 100 })
  t.teardown(() => log.close())
  const failures = [
    withDetails(new BudgetExceededError('Daily token budget spent'), undefined, { 'retry-after': '60' }),
    new LlmUnavailableError('the provider is down'),
    new ValidationError('bad input'),
    new Error('unexpected')
  ]
  for (const [i, failure] of failures.entries()) {
    const session = await blogSession(log, `st_r${i}`)
    const outcome = await runGeneration(
      session,
      {
        agent: 'content',
        method: 'generateBlogPost',
        input: {},
        caller: { id: 'c', kind: 'api-key', role: 'premium' }
      },
      {
        log,
        invoke: async () => {
          throw failure
        }
      }
    )
    t.equal(outcome.status, 'error')
    const last = await log.last(session.streamId)
    t.match(
      last,
      { event: 'error', data: { recoverable: false } },
      `${(failure as { code?: string }).code ?? 'AMK_INTERNAL'}: recoverable false`
    )
  }
})

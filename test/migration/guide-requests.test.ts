// The example requests of the Express service's guide (PHASE_2_PRODUCTION_GUIDE.md), sent as written:
// each gets the answer docs/migration.md documents — translated (the cache-clear pattern), or a 400 whose
// message names this service's field (`params` → `input`, `queries` → `requests`, string `master` → a step
// object, `days` → `duration`, word `length` → a word count). The rewritten requests then succeed.
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { build } from '../support.js'

const ADMIN_KEY = 'amk_migration_admin_key_000000000000'

async function send (app: FastifyInstance, url: string, payload?: object) {
  const res = await app.inject({ method: 'POST', url, payload, headers: { 'x-api-key': ADMIN_KEY } })
  return { status: res.statusCode, body: res.json(), raw: res.body }
}

/** The validation problem of one field, as the error envelope lists it. */
const problem = (body: { details?: Array<{ field: string, message: string }> }, field: string) =>
  body.details?.find(d => d.field === field)?.message ?? ''

t.test('the guide\'s example requests get their documented answers', async t => {
  const app = await build(t, { env: { VALID_API_KEYS: `${ADMIN_KEY}:admin` } })

  t.test('sequential: `params` is refused naming `input`; with `input` the workflow runs', async t => {
    const old = await send(app, '/api/coordinator/sequential', {
      steps: [
        { agent: 'travel', method: 'searchFlights', params: { from: 'NYC', to: 'LAX', date: '2027-06-01' } },
        { agent: 'content', method: 'generateBlogPost', params: { topic: 'Flying NYC to LAX' } }
      ],
      input: { destination: 'Paris' }
    })
    t.equal(old.status, 400)
    t.equal(old.body.code, 'AMK_VALIDATION')
    t.equal(problem(old.body, 'body.steps.0.params'), 'is not allowed: the Express service\'s `params` is `input` here')
    const now = await send(app, '/api/coordinator/sequential', {
      steps: [
        { agent: 'travel', method: 'searchFlights', input: { from: 'NYC', to: 'LAX', date: '2027-06-01' } },
        { agent: 'content', method: 'generateBlogPost', input: { topic: 'Flying NYC to LAX' } }
      ]
    })
    t.equal(now.status, 200, now.raw)
    t.equal(now.body.status, 'completed')
  })

  t.test('parallel: tasks without inputs are refused naming each missing input field', async t => {
    const old = await send(app, '/api/coordinator/parallel', {
      tasks: [
        { agent: 'travel', method: 'searchFlights' },
        { agent: 'travel', method: 'searchHotels' },
        { agent: 'content', method: 'generateSocialPosts' }
      ],
      input: { destination: 'Tokyo' }
    })
    t.equal(old.status, 400)
    t.match(old.body.message, 'input.from is required')
  })

  t.test(
    'hierarchical: a string master and sub-agents are refused naming the step object; code aggregators are refused',
    async t => {
      const old = await send(app, '/api/coordinator/hierarchical', {
        master: 'innovation',
        subAgents: ['travel', 'content'],
        input: { campaign: 'Summer Travel 2025' },
        aggregator: 'function(results) { return combine(results); }'
      })
      t.equal(old.status, 400)
      for (const field of ['body.master', 'body.subAgents.0']) {
        t.match(
          problem(old.body, field),
          'must be object: a step object { "agent": "<agent>", "method": "<method>", "input": { … } }',
          field
        )
      }
      t.match(problem(old.body, 'body.aggregator'), 'must be one of: collect, merge, master-summary')
      const joi = await send(app, '/api/coordinator/hierarchical', {
        master: { name: 'innovation', method: 'generateIdeas' },
        subAgents: [{ name: 'content', method: 'generateSocialPosts' }]
      })
      t.equal(
        problem(joi.body, 'body.master.name'),
        "is not allowed: the Express service's step `name` is `agent` here",
        'its Joi form'
      )
    }
  )

  t.test('cache clear: `travel:*` is translated to `*` and deletes the agent\'s entries', async t => {
    await send(app, '/api/agents/travel/cache/clear', { pattern: '*' })
    const invoke = await send(app, '/api/agents/travel/getVisaRequirements', {
      destination: 'Japan',
      nationality: 'Egyptian'
    })
    t.equal(invoke.status, 200, invoke.raw)
    const cleared = await send(app, '/api/agents/travel/cache/clear', { pattern: 'travel:*' })
    t.equal(cleared.status, 200)
    t.same(cleared.body, { success: true, agent: 'travel', pattern: '*', deleted: 1 })
    const other = await send(app, '/api/agents/travel/cache/clear', { pattern: 'content:*' })
    t.equal(other.status, 400)
    t.match(other.body.message, 'use POST /api/agents/content/cache/clear')
    const bodyless = await send(app, '/api/agents/travel/cache/clear')
    t.equal(bodyless.status, 400, 'the troubleshooting section\'s bodyless clear needs a JSON body')
    t.equal(bodyless.body.message, 'Request validation failed: body must be object')
    t.match((await send(app, '/api/agents/travel/cache/clear', {})).body, { success: true, pattern: '*' })
  })

  t.test('cache warm: `queries` is refused naming `requests`', async t => {
    const old = await send(app, '/api/agents/travel/cache/warm', {
      queries: ['flights from NYC to LAX', 'hotels in Paris']
    })
    t.equal(old.status, 400)
    t.match(problem(old.body, 'body.queries'), 'the Express service\'s `queries` is `requests` here')
    const now = await send(app, '/api/agents/travel/cache/warm', {
      requests: [{ method: 'getVisaRequirements', input: { destination: 'Peru', nationality: 'Egyptian' } }]
    })
    t.equal(now.status, 200, now.raw)
    t.equal(now.body.warmed, 1)
  })

  t.test('stream: the blog `length` word and the itinerary `days` are refused naming the new form', async t => {
    const blog = await send(app, '/api/stream/blog', { topic: 'AI in Travel', tone: 'professional', length: 'medium' })
    t.equal(blog.status, 400)
    t.match(problem(blog.body, 'body.length'), 'a target length in words')
    const itinerary = await send(app, '/api/stream/itinerary', { destination: 'Paris', days: 3, budget: 1000 })
    t.equal(itinerary.status, 400)
    t.match(problem(itinerary.body, 'body.days'), 'the Express service\'s itinerary `days` is `duration` here')
  })

  t.test('routes the guide lists without a body answer as before', async t => {
    for (const url of [
      '/api/agents/list',
      '/api/agents/overview',
      '/api/agents/travel/health',
      '/api/metrics/json',
      '/api/coordinator/workflows',
      '/api/coordinator/stats',
      '/api/status'
    ]) {
      const res = await app.inject({ url, headers: { 'x-api-key': ADMIN_KEY } })
      t.equal(res.statusCode, 200, url)
    }
    const login = await send(app, '/api/auth/login', { email: 'user@example.com', password: 'password' })
    t.equal(login.status, 401, 'login exists; the guide\'s demo user does not')
  })
})

// The coordinator through the real @google/genai SDK against the local Gemini protocol server: the
// predefined workflows end to end (context reaches the prompt), a parallel run with one failing and one
// timing-out task (the timeout closes the upstream socket), a cancel mid-run that aborts the in-flight
// provider call and stores the partial run — also when the cancel arrives at another replica — and a
// streamed run whose per-step usage sums to the total.
import t, { type Test } from 'tap'
import http from 'node:http'
import { once } from 'node:events'
import type { FastifyInstance } from 'fastify'
import {
  startGeminiServer,
  type GeminiReply,
  type GeminiRequest,
  type GeminiServer
} from '../fixtures/gemini-server.js'
import { methodOf, inputOf, modelAnswer } from '../agents/support.js'
import { build, needs, postgresDatabase } from '../support.js'
import { as, COORDINATOR_ENV, KEYS, outputProblems, parseSse, post } from './support.js'

async function setup (
  t: Test,
  env: Record<string, string | undefined> = {},
  db?: null
): Promise<{ app: FastifyInstance; gemini: GeminiServer }> {
  const gemini = await startGeminiServer(modelAnswer)
  t.teardown(() => gemini.close())
  const app = await build(t, {
    ...(db === null ? { db: null } : {}),
    env: { ...COORDINATOR_ENV, GEMINI_API_KEY: 'k', GEMINI_BASE_URL: gemini.url, LLM_MAX_RETRIES: '0', ...env }
  })
  return { app, gemini }
}

const methodName = (request: GeminiRequest) => methodOf(request).method.name

/**
 * Waits for a condition the server reaches on its own schedule (a closed socket is noticed a moment later,
 * progress is stored on a timer). It sleeps between probes: a loop of bare injects would starve the timers.
 */
async function until (probe: () => boolean | Promise<boolean>): Promise<void> {
  while (!(await probe())) await new Promise(resolve => setTimeout(resolve, 10))
}

/**
 * The id of the one run in the database. Without an Idempotency-Key its row is inserted while its steps run, so
 * it may land after a step's provider call started: waited for.
 */
async function onlyRunId (app: FastifyInstance): Promise<string> {
  let rows: Array<{ id: string }> = []
  await until(async () => (rows = await app.db.query<{ id: string }>('SELECT id FROM workflow_runs')).length > 0)
  return rows[0].id
}

/** Answers like a model, except the named method hangs (and reports when it was reached). */
function hangOn (name: string) {
  let reached!: (request: GeminiRequest) => void
  const hit = new Promise<GeminiRequest>(resolve => { reached = resolve })
  const respond = (request: GeminiRequest): GeminiReply => {
    if (methodName(request) !== name) return modelAnswer(request)
    reached(request)
    return { hang: true }
  }
  return { hit, respond }
}

t.test(
  'the predefined workflows run end to end through the Gemini SDK; context and references reach the prompts',
  async t => {
    const { app, gemini } = await setup(t)
    t.match(app.features.llmProvider, /^gemini/)
    const trip = (
      await post(app, 'workflow', {
        workflowName: 'trip-package',
        input: { origin: 'Cairo', destination: 'Lisbon', departureDate: '2030-03-01', returnDate: '2030-03-04' }
      })
    ).json()
    t.match(trip, { status: 'completed', success: true })
    t.same(outputProblems(app, trip.steps), [])
    t.ok(
      trip.steps.every(
        (s: { usage: { model: string; inputTokens: number } }) =>
          s.usage.model === 'gemini-2.5-flash' && s.usage.inputTokens > 0
      )
    )
    t.same(gemini.requests.map(methodName).sort(), ['generateItinerary', 'searchFlights', 'searchHotels'])

    gemini.reset()
    const campaign = (
      await post(app, 'workflow', {
        workflowName: 'trip-campaign',
        input: { destination: 'Petra', duration: 2, postCount: 2 }
      })
    ).json()
    t.match(campaign, { status: 'completed' })
    t.same(outputProblems(app, campaign.steps), [])
    t.same(gemini.requests.map(methodName), ['generateItinerary', 'generateBlogPost', 'generateSocialPosts'])
    t.same(inputOf(gemini.requests[1]).context, campaign.steps[0].data, "the itinerary is the blog post's context")
    t.equal(
      inputOf(gemini.requests[2]).topic,
      campaign.steps[1].data.headline,
      'steps.blog.data.headline is the social topic'
    )
    t.ok(campaign.steps.slice(1).every((s: { usage: { model: string } }) => s.usage.model === 'gemini-2.5-pro'))

    gemini.reset()
    const launch = (
      await post(app, 'workflow', {
        workflowName: 'launch-plan',
        input: { industry: 'fintech', target: 'freelancers in Egypt' }
      })
    ).json()
    t.match(launch, {
      status: 'completed',
      result: {
        overview:
          'innovation.generateIdeas led; 3 of 3 sub-agents completed: innovation.validateIdea, content.generateBlogPost, content.generateSocialPosts'
      }
    })
    t.same(outputProblems(app, launch.steps), [])
    const validate = gemini.requests.find(r => methodName(r) === 'validateIdea')!
    t.equal(inputOf(validate).idea, launch.steps[0].data.ideas[0].description)
    t.same(inputOf(validate).context, launch.steps[0].data, "the master's data is each sub-agent's context")
  }
)

t.test(
  "parallel with one failing and one timing-out task: 200, success false, each task's status; the timeout aborts the call",
  async t => {
    const { app, gemini } = await setup(t)
    const { respond } = hangOn('generateItinerary')
    gemini.respond = request =>
      methodName(request) === 'searchHotels' ? { status: 400, message: 'bad request upstream' } : respond(request)
    const res = await post(app, 'parallel', {
      timeoutMs: 300,
      tasks: [
        {
          id: 'flights',
          agent: 'travel',
          method: 'searchFlights',
          input: { from: 'Oslo', to: 'Rome', date: '2030-02-01' }
        },
        {
          id: 'hotels',
          agent: 'travel',
          method: 'searchHotels',
          input: { destination: 'Rome', checkin: '2030-02-01', checkout: '2030-02-03' }
        },
        { id: 'itinerary', agent: 'travel', method: 'generateItinerary', input: { destination: 'Rome', duration: 2 } }
      ]
    })
    t.equal(res.statusCode, 200)
    const run = res.json()
    t.match(run, { success: false, status: 'failed', error: { details: { failedSteps: [1, 2] } } })
    t.same(
      run.steps.map((s: { id: string; status: string }) => [s.id, s.status]),
      [
        ['flights', 'completed'],
        ['hotels', 'failed'],
        ['itinerary', 'timed_out']
      ]
    )
    t.match(run.steps[1].error, { code: /^AMK_LLM/ })
    t.match(run.steps[2].error, { code: 'AMK_LLM_TIMEOUT', message: 'step timed out after 300 ms' })
    t.same(Object.keys(run.result), ['flights'])
    await until(() => gemini.aborted.length > 0)
    t.same(
      gemini.aborted.map(methodName),
      ['generateItinerary'],
      "the Gemini server saw the timed-out request's socket close"
    )
    t.match(
      run.steps[2].usage,
      { estimated: true, model: 'gemini-2.5-flash' },
      'the aborted call still reports (estimated) usage'
    )
    t.ok(run.steps[2].usage.inputTokens > 0)
    const ledger = await app.db.query<{ input_tokens: number; status: string }>(
      'SELECT input_tokens, status FROM usage_ledger WHERE method = $1',
      ['generateItinerary']
    )
    t.same(
      ledger,
      [{ input_tokens: run.steps[2].usage.inputTokens, status: 'cancelled' }],
      'the step reports what the ledger recorded'
    )
  }
)

t.test(
  'cancel mid-run aborts the in-flight provider call; the run is stored as cancelled with its partial results',
  async t => {
    const { app, gemini } = await setup(t)
    const { hit, respond } = hangOn('generateBlogPost')
    gemini.respond = respond
    const pending = post(app, 'sequential', {
      steps: [
        { agent: 'travel', method: 'generateItinerary', input: { destination: 'Fez', duration: 2 } },
        { agent: 'content', method: 'generateBlogPost', input: { topic: 'Two days in Fez' } },
        { agent: 'content', method: 'generateSocialPosts', input: { topic: 'Fez', count: 1 } }
      ]
    })
    await hit
    const runId = await onlyRunId(app)
    const follower = app.inject({
      url: `/api/coordinator/runs/${runId}`,
      headers: as('alice', { accept: 'text/event-stream' })
    })
    t.equal(
      (await app.inject({ url: `/api/coordinator/runs/${runId}`, headers: as('bob', { accept: 'text/event-stream' }) }))
        .statusCode,
      404
    )
    const aborted = gemini.waitForAbort()
    const cancel = await app.inject({
      method: 'POST',
      url: `/api/coordinator/runs/${runId}/cancel`,
      headers: as('alice')
    })
    t.equal(cancel.statusCode, 200)
    t.equal(methodName(await aborted), 'generateBlogPost', 'the Gemini server saw the socket close')
    const followed = parseSse((await follower).body)
    t.same(
      followed.map(f => `${f.event}${f.data.index ?? ''}`),
      ['run-started', 'step-started0', 'step-completed0', 'step-started1', 'step-failed1', 'complete'],
      'GET /runs/:runId with Accept: text/event-stream replays the events so far, then follows the run'
    )
    t.match(followed[0].data, { runId, replayed: true })
    t.match(followed[5].data, { runId, status: 'cancelled' })
    const after = parseSse(
      (
        await app.inject({
          url: `/api/coordinator/runs/${runId}`,
          headers: as('alice', { accept: 'text/event-stream' })
        })
      ).body
    )
    t.same(
      after.map(f => f.event),
      ['run-started', 'complete'],
      'a finished run streams its final state'
    )
    const cancelled = cancel.json()
    t.match(cancelled, {
      runId,
      status: 'cancelled',
      success: false,
      cancelRequested: true,
      error: { code: 'AMK_CANCELLED' }
    })
    t.same(
      cancelled.steps.map((s: { status: string }) => s.status),
      ['completed', 'cancelled', 'skipped']
    )
    t.equal(cancelled.result.destination, 'Fez', 'partial results are kept')
    const original = (await pending).json()
    t.same(original, cancelled, 'the request that started the run gets the same answer')
    const stored = (await app.inject({ url: `/api/coordinator/runs/${runId}`, headers: as('alice') })).json()
    t.match(stored, { status: 'cancelled', cancelRequested: true })
    t.same(stored.steps, cancelled.steps)
    t.equal(gemini.requests.length, 2, 'the third step never called the provider')
    const ledger = await app.db.query<{ method: string; status: string }>(
      'SELECT method, status FROM usage_ledger WHERE run_id = $1 ORDER BY id',
      [runId]
    )
    t.same(
      ledger.map(r => [r.method, r.status]),
      [
        ['generateItinerary', 'success'],
        ['generateBlogPost', 'cancelled']
      ]
    )
  }
)

t.test('a cancel sent to another replica reaches the replica running the run', { skip: needs('postgres') }, async t => {
  const url = await postgresDatabase()
  const { app: runner, gemini } = await setup(t, { DATABASE_URL: url }, null)
  const other = await build(t, { db: null, env: { ...COORDINATOR_ENV, DATABASE_URL: url } })
  const { hit, respond } = hangOn('generateBlogPost')
  gemini.respond = respond
  const pending = post(runner, 'hierarchical', {
    master: { agent: 'travel', method: 'generateItinerary', input: { destination: 'Tunis', duration: 2 } },
    subAgents: [{ agent: 'content', method: 'generateBlogPost', input: { topic: 'Tunis' } }]
  })
  await hit
  const runId = await onlyRunId(runner)
  const aborted = gemini.waitForAbort()
  const cancel = await other.inject({
    method: 'POST',
    url: `/api/coordinator/runs/${runId}/cancel`,
    headers: as('alice')
  })
  t.equal(cancel.statusCode, 200)
  t.equal(methodName(await aborted), 'generateBlogPost')
  const run = (await pending).json()
  t.match(run, { status: 'cancelled', cancelRequested: true })
  t.same(run.steps.map((s: { status: string }) => s.status), ['completed', 'cancelled'])
  t.match((await other.inject({ url: `/api/coordinator/runs/${runId}`, headers: as('alice') })).json(), {
    status: 'cancelled'
  })
})

t.test(
  'a streamed run through Gemini: tokens with the agent path, step events in order, usage sums to the total',
  async t => {
    const { app, gemini } = await setup(t)
    gemini.respond = request => ({
      ...modelAnswer(request),
      chunks: 5,
      usage: { input: 100 + gemini.requests.length, output: 40 }
    })
    const res = await post(
      app,
      'workflow',
      { workflowName: 'trip-campaign', input: { destination: 'Baku', duration: 2, postCount: 1 } },
      as('alice', { accept: 'text/event-stream' })
    )
    const frames = parseSse(res.body)
    t.same(
      frames.filter(f => f.event !== 'token').map(f => `${f.event}${f.data.index ?? ''}`),
      [
        'run-started',
        'step-started0',
        'step-completed0',
        'step-started1',
        'step-completed1',
        'step-started2',
        'step-completed2',
        'complete'
      ]
    )
    t.ok(
      gemini.requests.every(r => r.stream),
      'each call streamed from the provider'
    )
    const tokens = frames.filter(f => f.event === 'token')
    t.same(
      [...new Set(tokens.map(f => f.data.path))],
      ['travel.generateItinerary', 'content.generateBlogPost', 'content.generateSocialPosts']
    )
    const complete = frames[frames.length - 1].data
    const usages = frames.filter(f => f.event === 'step-completed').map(f => f.data.usage)
    t.same(
      usages.map(u => [u.inputTokens, u.outputTokens]),
      [
        [101, 40],
        [102, 40],
        [103, 40]
      ]
    )
    t.same(complete.usage, { inputTokens: 306, outputTokens: 120, costUsd: usages.reduce((n, u) => n + u.costUsd, 0) })
    t.ok(complete.usage.costUsd > 0)
  }
)

const FEZ = {
  steps: [
    { agent: 'travel', method: 'generateItinerary', input: { destination: 'Fez', duration: 2 } },
    { agent: 'content', method: 'generateBlogPost', input: { topic: 'Two days in Fez' } },
    { agent: 'content', method: 'generateSocialPosts', input: { topic: 'Fez', count: 1 } }
  ]
}

t.test('a streaming client that goes away cancels the run it started; progress is readable while it runs', async t => {
  const { app, gemini } = await setup(t)
  const { hit, respond } = hangOn('generateBlogPost')
  gemini.respond = respond
  const address = await app.listen({ port: 0, host: '127.0.0.1' })
  const request = http.request(`${address}/api/coordinator/sequential`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream', 'x-api-key': KEYS.alice }
  })
  request.end(JSON.stringify(FEZ))
  const [response] = await once(request, 'response') as [http.IncomingMessage]
  let text = ''
  response.setEncoding('utf8').on('data', (chunk: string) => { text += chunk })
  response.on('error', () => {})
  const runId = response.headers['x-run-id'] as string
  await hit
  const read = async () => (await app.inject({ url: `/api/coordinator/runs/${runId}`, headers: as('alice') })).json()
  let progress = await read()
  // progress is written at most once per COORDINATOR_POLL_MS: steps may not be stored yet
  await until(async () => (progress = await read()).steps?.[1]?.status === 'running')
  t.match(
    progress,
    {
      status: 'running',
      steps: [
        { status: 'completed', data: { destination: 'Fez' } },
        { status: 'running', startedAt: String },
        { status: 'pending' }
      ]
    },
    'stored progress: the step in flight is stored as running'
  )
  await until(() => text.includes('event: step-started') && text.includes('"index":1'))

  const aborted = gemini.waitForAbort()
  request.destroy()
  t.equal(methodName(await aborted), 'generateBlogPost', 'the provider call was aborted')
  let stored = await read()
  await until(async () => (stored = await read()).status !== 'running')
  t.match(stored, { status: 'cancelled', error: { code: 'AMK_CANCELLED' } })
  t.same(stored.steps.map((s: { status: string }) => s.status), ['completed', 'cancelled', 'skipped'])
})

t.test('shutdown ends a streaming run with its final event (cancelled, AMK_SHUTTING_DOWN) and stores it', async t => {
  const { app, gemini } = await setup(t)
  const { hit, respond } = hangOn('generateBlogPost')
  gemini.respond = respond
  const pending = post(app, 'sequential', FEZ, as('alice', { accept: 'text/event-stream' }))
  await hit
  await app.close()
  const frames = parseSse((await pending).body)
  const complete = frames[frames.length - 1]
  t.equal(complete.event, 'complete')
  t.match(complete.data, { status: 'cancelled', error: { code: 'AMK_SHUTTING_DOWN' } })
  t.same(complete.data.steps.map((s: { status: string }) => s.status), ['completed', 'cancelled', 'skipped'])
  await until(() => gemini.aborted.length > 0)
  const [row] = await app.db.query<{ status: string }>('SELECT status FROM workflow_runs WHERE id = $1', [
    complete.data.runId
  ])
  t.equal(row.status, 'cancelled', 'stored before the database closed')
})

// The coordinator over HTTP on the offline provider: predefined workflows end to end, onError, refusals
// (aggregators, code, prototype keys), stored runs and who may read them, streamed step events, the
// catalog, statistics and metrics.
import t from 'tap'
import { build } from '../support.js'
import { as, COORDINATOR_ENV, ledgerRows, outputProblems, parseSse, post, runRows } from './support.js'

const TRIP = {
  origin: 'New York',
  destination: 'Lisbon',
  departureDate: '2030-05-01',
  returnDate: '2030-05-05',
  travelers: 2,
  interests: ['food']
}

t.test(
  'predefined workflows run end to end offline: outputs validate, references resolve, one trace per run',
  async t => {
    const app = await build(t, { env: COORDINATOR_ENV })

    const pkg = await post(app, 'workflow', { workflowName: 'trip-package', input: TRIP })
    t.equal(pkg.statusCode, 200)
    const trip = pkg.json()
    t.match(trip, { strategy: 'parallel', workflowName: 'trip-package', status: 'completed', success: true })
    t.same(
      trip.steps.map((s: { id: string; status: string }) => [s.id, s.status]),
      [
        ['flights', 'completed'],
        ['hotels', 'completed'],
        ['itinerary', 'completed']
      ]
    )
    t.same(outputProblems(app, trip.steps), [])
    t.same(Object.keys(trip.result), ['flights', 'hotels', 'itinerary'])
    t.equal(trip.result.itinerary.duration, 4, 'nights between the two dates')
    t.equal(trip.result.flights.route.to, 'Lisbon')
    t.equal(pkg.headers['x-run-id'], trip.runId)
    t.equal(trip.traceId, trip.runId)
    t.equal(await ledgerRows(app, trip.runId), 3, 'every provider call is recorded under the run')

    const campaign = (
      await post(app, 'workflow', {
        workflowName: 'trip-campaign',
        input: { destination: 'Cairo', duration: 3, platforms: ['twitter', 'linkedin'], postCount: 2 }
      })
    ).json()
    t.match(campaign, { strategy: 'sequential', status: 'completed' })
    t.same(outputProblems(app, campaign.steps), [])
    const [itinerary, blog, social] = campaign.steps
    t.equal(itinerary.data.destination, 'Cairo')
    t.equal(social.data.topic, blog.data.headline, 'steps.blog.data.headline reached the social step')
    t.same(campaign.result, social.data)

    const launch = (
      await post(app, 'workflow', {
        workflowName: 'launch-plan',
        input: { industry: 'travel', target: 'small travel agencies', problem: 'manual bookings' }
      })
    ).json()
    t.match(launch, { strategy: 'hierarchical', status: 'completed' })
    t.same(
      launch.steps.map((s: { role: string }) => s.role),
      ['master', 'sub-agent', 'sub-agent', 'sub-agent']
    )
    t.same(outputProblems(app, launch.steps), [])
    const [ideas, validation, , posts] = launch.steps
    t.equal(
      validation.data.idea,
      ideas.data.ideas[0].description,
      'steps.ideas.data.ideas.0.description reached validateIdea'
    )
    t.equal(posts.data.topic, ideas.data.ideas[0].title)
    t.same(launch.result.summary, ideas.data)
    t.same(Object.keys(launch.result.findings), ['validation', 'blog', 'social'])

    const stored = (await app.inject({ url: `/api/coordinator/runs/${launch.runId}`, headers: as('alice') })).json()
    t.same(stored.steps, launch.steps, 'the stored run has every step with timing and usage')
    t.same(stored.usage, launch.usage)
    t.equal(stored.status, 'completed')

    const badInput = await post(app, 'workflow', {
      workflowName: 'trip-package',
      input: { ...TRIP, returnDate: '2030-04-01', travelers: 0 }
    })
    t.equal(badInput.statusCode, 400)
    t.match(badInput.json().details, [{ field: 'input.travelers' }])
    const badDates = await post(app, 'workflow', {
      workflowName: 'trip-package',
      input: { ...TRIP, returnDate: '2030-04-01' }
    })
    t.match(badDates.json().details, [{ field: 'input.returnDate', message: /1 to 21 days/ }])
  }
)

t.test(
  'sequential with a failing middle step: stop returns the completed steps and the failure; continue runs the rest',
  async t => {
    const app = await build(t, { env: COORDINATOR_ENV })
    const steps = [
      { id: 'trip', agent: 'travel', method: 'generateItinerary', input: { destination: 'Rome', duration: 2 } },
      // Resolves to the itinerary's days (an array) where a topic string is required: fails at run time.
      { agent: 'content', method: 'generateBlogPost', input: { topic: { $ref: 'steps.trip.data.days' } } },
      { agent: 'content', method: 'generateSocialPosts', input: { topic: { $ref: 'input.topic' }, count: 2 } }
    ]
    const stop = await post(app, 'sequential', { steps, input: { topic: 'Rome in two days' }, onError: 'stop' })
    t.equal(stop.statusCode, 200)
    const stopped = stop.json()
    t.match(stopped, {
      success: false,
      status: 'failed',
      error: { code: 'AMK_VALIDATION', details: { failedSteps: [1] } }
    })
    t.same(
      stopped.steps.map((s: { status: string }) => s.status),
      ['completed', 'failed', 'skipped']
    )
    t.match(stopped.steps[1], {
      error: { code: 'AMK_VALIDATION', details: [{ field: 'steps.1.input.topic' }] },
      usage: { inputTokens: 0 }
    })
    t.ok(stopped.steps[1].startedAt && stopped.steps[1].finishedAt)
    t.equal(stopped.steps[2].error.code, 'AMK_SKIPPED')
    t.equal(stopped.result.destination, 'Rome', "the completed step's data is kept")

    const cont = (
      await post(app, 'sequential', { steps, input: { topic: 'Rome in two days' }, onError: 'continue' })
    ).json()
    t.same(
      cont.steps.map((s: { status: string }) => s.status),
      ['completed', 'failed', 'completed']
    )
    t.match(cont, { success: false, status: 'failed' })
    t.equal(cont.result.topic, 'Rome in two days')
  }
)

t.test(
  'refused: unknown aggregator (valid ones listed), code, $ref escapes and __proto__ keys; nothing runs or changes',
  async t => {
    const app = await build(t, { env: COORDINATOR_ENV })
    const master = { agent: 'travel', method: 'generateItinerary', input: { destination: 'Oslo', duration: 2 } }
    const subAgents = [{ agent: 'content', method: 'generateBlogPost', input: { topic: 'Oslo' } }]

    const aggregator = await post(app, 'hierarchical', { master, subAgents, aggregator: 'customJs' })
    t.equal(aggregator.statusCode, 400)
    t.same(aggregator.json().details, [
      { field: 'body.aggregator', message: 'must be one of: collect, merge, master-summary' }
    ])
    const fn = await post(app, 'hierarchical', { master, subAgents, aggregator: '(results) => { process.exit(1) }' })
    t.equal(fn.statusCode, 400)
    const workflow = await post(app, 'workflow', { workflowName: 'rm -rf', input: {} })
    t.same(workflow.json().details, [
      { field: 'body.workflowName', message: 'must be one of: trip-package, trip-campaign, launch-plan' }
    ])

    const escape = await post(app, 'sequential', {
      steps: [
        {
          agent: 'travel',
          method: 'generateItinerary',
          input: { destination: { $ref: 'constructor.prototype' }, duration: 2 }
        }
      ]
    })
    t.equal(escape.statusCode, 400)
    t.match(escape.json().details, [{ field: 'steps.0.input.destination', message: /data paths only/ }])
    const proto = await post(app, 'sequential', {
      steps: [
        master,
        { agent: 'content', method: 'generateBlogPost', input: { topic: { $ref: 'steps.0.data.__proto__.polluted' } } }
      ]
    })
    t.match(proto.json().details, [{ field: 'steps.1.input.topic', message: /forbidden segment "__proto__"/ }])
    const protoKey = await app.inject({
      method: 'POST',
      url: '/api/coordinator/sequential',
      headers: { ...as('alice'), 'content-type': 'application/json' },
      payload:
        '{"steps":[{"agent":"travel","method":"generateItinerary","input":{"destination":"Oslo","duration":2,"__proto__":{"polluted":true}}}]}'
    })
    t.equal(protoKey.statusCode, 400)
    const ctorKey = await app.inject({
      method: 'POST',
      url: '/api/coordinator/parallel',
      headers: { ...as('alice'), 'content-type': 'application/json' },
      payload:
        '{"tasks":[{"agent":"travel","method":"generateItinerary","input":{"destination":"Oslo","duration":2}}],"input":{"constructor":{"prototype":{"polluted":true}}}}'
    })
    t.equal(ctorKey.statusCode, 400)
    const unknown = await post(app, 'parallel', {
      tasks: [
        { agent: 'finance', method: 'steal' },
        { agent: 'travel', method: 'eval' }
      ]
    })
    t.match(unknown.json().details, [
      { field: 'tasks.0.agent', message: /available: travel, content, innovation/ },
      { field: 'tasks.1.method', message: /available: searchFlights/ }
    ])
    const tooMany = await post(app, 'parallel', { tasks: Array.from({ length: 11 }, () => master) })
    t.equal(tooMany.statusCode, 400)
    const tooLong = await post(app, 'sequential', { steps: Array.from({ length: 21 }, () => master) })
    t.equal(tooLong.statusCode, 400)

    t.equal(await runRows(app), 0, 'no run was stored')
    t.equal(await ledgerRows(app), 0, 'no provider call was made')
    t.equal(({} as Record<string, unknown>).polluted, undefined)

    const code = 'require("child_process").execSync("touch /tmp/pwned"); function () { return 1 }'
    const data = (
      await post(app, 'sequential', {
        steps: [{ agent: 'content', method: 'generateSocialPosts', input: { topic: code, count: 1 } }]
      })
    ).json()
    t.equal(data.status, 'completed', 'a code-looking string is data')
    t.equal(data.result.topic, code)
  }
)

t.test('runs: the owner or agent:stats reads one; others get 404; a finished run cannot be cancelled', async t => {
  const app = await build(t, { env: COORDINATOR_ENV })
  const run = (
    await post(app, 'parallel', {
      tasks: [
        { agent: 'travel', method: 'getVisaRequirements', input: { destination: 'Japan', nationality: 'Egyptian' } }
      ]
    })
  ).json()
  const read = (who: 'alice' | 'bob' | 'admin') =>
    app.inject({ url: `/api/coordinator/runs/${run.runId}`, headers: as(who) })
  t.equal((await read('alice')).statusCode, 200)
  t.equal((await read('admin')).statusCode, 200)
  const other = await read('bob')
  t.equal(other.statusCode, 404)
  t.equal(other.json().code, 'AMK_NOT_FOUND')
  const bobCancel = await app.inject({
    method: 'POST',
    url: `/api/coordinator/runs/${run.runId}/cancel`,
    headers: as('bob')
  })
  t.equal(bobCancel.statusCode, 404)
  const cancel = await app.inject({
    method: 'POST',
    url: `/api/coordinator/runs/${run.runId}/cancel`,
    headers: as('alice')
  })
  t.equal(cancel.statusCode, 409)
  t.equal((await app.inject({ url: '/api/coordinator/runs/not-a-uuid', headers: as('alice') })).statusCode, 400)
  t.equal((await app.inject({ url: `/api/coordinator/runs/${run.runId}` })).statusCode, 401)
})

t.test('Accept: text/event-stream streams step events in order; per-step usage sums to the run total', async t => {
  const app = await build(t, { env: COORDINATOR_ENV })
  const res = await post(app, 'sequential', {
    steps: [
      { agent: 'travel', method: 'generateItinerary', input: { destination: 'Nice', duration: 2 } },
      { agent: 'content', method: 'generateBlogPost', input: { topic: { $ref: 'steps.0.data.days' } } },
      { agent: 'content', method: 'generateSocialPosts', input: { topic: 'Nice in spring', count: 2 } }
    ],
    onError: 'continue'
  }, as('alice', { accept: 'text/event-stream' }))
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/event-stream/)
  t.equal(res.headers['cache-control'], 'no-cache, no-transform')
  const frames = parseSse(res.body)
  const runId = res.headers['x-run-id']
  t.ok(frames.every((f, i) => f.id === `${runId}-${i + 1}`), 'ids are <runId>-<seq>, seq increasing')
  const order = frames.filter(f => f.event !== 'token').map(f => `${f.event}${f.data.index ?? ''}`)
  t.same(order, [
    'run-started',
    'step-started0',
    'step-completed0',
    'step-started1',
    'step-failed1',
    'step-started2',
    'step-completed2',
    'complete'
  ])
  const tokens = frames.filter(f => f.event === 'token')
  t.ok(
    tokens.some(f => f.data.path === 'travel.generateItinerary') &&
      tokens.some(f => f.data.path === 'content.generateSocialPosts'),
    'token events carry the agent path'
  )
  const firstToken = frames.findIndex(f => f.event === 'token' && f.data.index === 2)
  t.ok(
    firstToken > frames.findIndex(f => f.event === 'step-started' && f.data.index === 2) &&
      firstToken < frames.findIndex(f => f.event === 'step-completed' && f.data.index === 2)
  )
  const finished = frames.filter(f => f.event === 'step-completed' || f.event === 'step-failed').map(f => f.data.usage)
  const complete = frames[frames.length - 1].data
  t.same(complete.usage, {
    inputTokens: finished.reduce((n, u) => n + u.inputTokens, 0),
    outputTokens: finished.reduce((n, u) => n + u.outputTokens, 0),
    costUsd: finished.reduce((n, u) => n + u.costUsd, 0)
  })
  t.ok(complete.usage.outputTokens > 0)
  t.match(complete, { runId, status: 'failed', success: false })
  const stored = (await app.inject({ url: `/api/coordinator/runs/${runId}`, headers: as('alice') })).json()
  t.same(stored.usage, complete.usage)
})

t.test('catalog, predefined workflow descriptions, statistics (and reset), metrics', async t => {
  const app = await build(t, { env: { ...COORDINATOR_ENV, METRICS_PUBLIC: 'true' } })
  const workflows = (await app.inject({ url: '/api/coordinator/workflows', headers: as('alice') })).json()
  t.same(workflows.workflows.map((w: { name: string }) => w.name), ['trip-package', 'trip-campaign', 'launch-plan'])
  t.match(workflows.workflows[2], {
    strategy: 'hierarchical',
    aggregator: 'master-summary',
    steps: [{ id: 'ideas', role: 'master' }, {}, {}, {}]
  })
  t.match(workflows.workflows[0].inputSchema, {
    type: 'object',
    required: ['from', 'destination', 'date', 'returnDate']
  })
  t.same(workflows.aggregators.map((a: { name: string }) => a.name), ['collect', 'merge', 'master-summary'])
  const agents = (await app.inject({ url: '/api/coordinator/agents', headers: as('alice') })).json()
  t.same(agents.agents.map((a: { name: string }) => a.name), ['travel', 'content', 'innovation'])
  t.same(agents.limits, { steps: 20, parallelTasks: 10 })
  t.ok(agents.agents[0].methods.find((m: { name: string }) => m.name === 'searchFlights').inputSchema.properties.from)

  await post(app, 'parallel', {
    tasks: [{ agent: 'travel', method: 'getVisaRequirements', input: { destination: 'Peru', nationality: 'German' } }]
  })
  await post(app, 'sequential', {
    steps: [
      { agent: 'travel', method: 'generateItinerary', input: { destination: 'Rome', duration: 2 } },
      { agent: 'content', method: 'generateBlogPost', input: { topic: { $ref: 'steps.0.data.days' } } }
    ]
  })
  const stats = (await app.inject({ url: '/api/coordinator/stats', headers: as('alice') })).json()
  t.match(stats, { total: 2, completed: 1, failed: 1, cancelled: 0, active: 0 })
  t.same(stats.byStrategy, {
    parallel: { total: 1, completed: 1, failed: 0, cancelled: 0, running: 0 },
    sequential: { total: 1, completed: 0, failed: 1, cancelled: 0, running: 0 }
  })
  t.same(stats.agents, {
    content: { calls: 1, succeeded: 0, failed: 1, successRate: 0 },
    travel: { calls: 2, succeeded: 2, failed: 0, successRate: 1 }
  })
  t.type(stats.averageDurationMs, 'number')

  t.equal(
    (await app.inject({ method: 'POST', url: '/api/coordinator/stats/reset', headers: as('alice') })).statusCode,
    403
  )
  t.equal(
    (await app.inject({ method: 'POST', url: '/api/coordinator/stats/reset', headers: as('admin') })).statusCode,
    200
  )
  t.match((await app.inject({ url: '/api/coordinator/stats', headers: as('alice') })).json(), {
    total: 0,
    agents: {},
    averageDurationMs: null
  })

  const metrics = (await app.inject('/api/metrics')).body
  t.match(metrics, /coordinator_workflows_total\{strategy="parallel",status="completed"\} 1/)
  t.match(metrics, /coordinator_workflows_total\{strategy="sequential",status="failed"\} 1/)
  t.match(metrics, /coordinator_workflow_duration_seconds_count\{strategy="parallel"\} 1/)
})

t.test('run routes are limited under the "coordinator" scope (30/min by default); reads are not', async t => {
  const app = await build(t, {
    env: { ...COORDINATOR_ENV, RATE_LIMIT_OVERRIDES: JSON.stringify({ global: 10_000, coordinator: 2 }) }
  })
  const body = {
    tasks: [{ agent: 'travel', method: 'getVisaRequirements', input: { destination: 'Chile', nationality: 'Indian' } }]
  }
  t.equal((await post(app, 'parallel', body)).statusCode, 200)
  t.equal(
    (await post(app, 'workflow', { workflowName: 'trip-campaign', input: { destination: 'Quito', duration: 1 } }))
      .statusCode,
    200
  )
  const limited = await post(app, 'sequential', { steps: body.tasks })
  t.equal(limited.statusCode, 429)
  t.match(limited.json(), { code: 'AMK_RATE_LIMITED', details: { scope: 'coordinator', limit: 2 } })
  t.ok(Number(limited.headers['retry-after']) > 0)
  t.equal((await app.inject({ url: '/api/coordinator/stats', headers: as('alice') })).statusCode, 200)
  t.equal((await post(app, 'parallel', body, as('bob'))).statusCode, 200, 'counted per caller')
})

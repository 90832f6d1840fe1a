// Issue 14, AG-UI: @ag-ui/client's HttpAgent against a listening server, for an agent method and a workflow.
// Every event validates against @ag-ui/core's schemas; RUN_STARTED comes first and RUN_FINISHED last; the
// text messages concatenate to the result; steps are paired; a failure is RUN_ERROR with our code; bad input
// is a 400 in the error shape before the stream opens; Last-Event-ID replays the same ids; cancel works.
import t, { type Test } from 'tap'
import { HttpAgent, type AgentSubscriber, type BaseEvent } from '@ag-ui/client'
import { EventType } from '@ag-ui/core'
import { EventSchemas } from '@ag-ui/core/schemas'
import type { FastifyInstance } from 'fastify'
import { WORKFLOWS } from '../../src/coordinator/workflows.js'
import { startGeminiServer } from '../fixtures/gemini-server.js'
import { modelAnswer } from '../agents/support.js'
import { admin, buildStreams, listen, premium, ROUTES, stalling, until, user } from '../streams/support.js'

const BLOG = ROUTES.blog.input
const TRIP = {
  from: 'New York',
  destination: 'Lisbon',
  date: '2030-05-01',
  returnDate: '2030-05-05',
  travelers: 2,
  interests: ['food']
}
const ENV = { RATE_LIMIT_OVERRIDES: JSON.stringify({ global: 10_000, coordinator: 10_000 }), COORDINATOR_POLL_MS: '25' }

interface Frame { id?: string, event: any }

/** Every `data:` frame of an SSE body, with its id when it has one. */
function framesOf (body: string): Frame[] {
  return body.split('\n\n').flatMap(block => {
    const lines = block.split('\n')
    const data = lines.filter(l => l.startsWith('data: ')).map(l => l.slice(6))
    if (data.length === 0) return []
    const id = lines.find(l => l.startsWith('id: '))?.slice(4)
    return [{ ...(id ? { id } : {}), event: JSON.parse(data.join('\n')) }]
  })
}

/** Runs an HttpAgent and collects the events it applied. */
async function runHttpAgent (url: string, headers: Record<string, string>, params: Parameters<HttpAgent['runAgent']>[0]) {
  const agent = new HttpAgent({ url, headers, threadId: 'thread-1' })
  const events: BaseEvent[] = []
  const subscriber: AgentSubscriber = { onEvent: ({ event }) => { events.push(event) } }
  let error: any
  try {
    await agent.runAgent(params, subscriber)
  } catch (err) {
    error = err
  }
  return { agent, events, error }
}

/** Every event validates against @ag-ui/core's schemas; RUN_STARTED first. */
function checkEvents (t: Test, events: readonly object[]) {
  const invalid = events.filter(event => !EventSchemas.safeParse(event).success)
  t.same(invalid, [], `all ${events.length} events validate against @ag-ui/core's EventSchemas`)
  t.equal(events.length > 0 && (events[0] as BaseEvent).type, EventType.RUN_STARTED, 'RUN_STARTED first')
}

const textOf = (events: readonly any[], messageId?: string) => events
  .filter(e => e.type === EventType.TEXT_MESSAGE_CONTENT && (!messageId || e.messageId === messageId))
  .map(e => e.delta).join('')

async function post (base: string, path: string, body: unknown, headers: Record<string, string> = premium) {
  return fetch(`${base}/api/ag-ui/${path}`, {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify(body)
  })
}

const runInput = (runId: string, extra: object = {}) =>
  ({ threadId: 'thread-1', runId, messages: [], tools: [], context: [], ...extra })

async function setup (t: Test, env: Record<string, string> = {}): Promise<{ app: FastifyInstance, base: string }> {
  const app = await buildStreams(t, { env: { ...ENV, ...env } })
  return { app, base: await listen(app) }
}

t.test('agent method: HttpAgent gets a valid AG-UI run whose text is the result', async t => {
  const { app, base } = await setup(t)
  const { agent, events, error } = await runHttpAgent(`${base}/api/ag-ui/content/generateBlogPost`, premium, {
    runId: 'run-blog-1',
    forwardedProps: { input: BLOG }
  })
  t.error(error)
  checkEvents(t, events)
  const types = events.map(e => e.type)
  t.equal(types.at(-1), EventType.RUN_FINISHED, 'RUN_FINISHED last')
  t.match(events[0], { threadId: 'thread-1', runId: 'run-blog-1', metadata: { streamId: /^st_/, agent: 'content' } })
  const finished: any = events.at(-1)
  t.match(finished, { threadId: 'thread-1', runId: 'run-blog-1', outcome: { type: 'success' } })
  t.ok(finished.usage[0].inputTokens > 0 && finished.usage[0].outputTokens > 0, 'RUN_FINISHED carries the usage')
  t.ok(types.filter(type => type === EventType.TEXT_MESSAGE_CONTENT).length > 1, 'tokens as TEXT_MESSAGE_CONTENT')
  t.equal(types.filter(type => type === EventType.TEXT_MESSAGE_START).length, 1, 'one text message')
  t.ok(types.indexOf(EventType.TEXT_MESSAGE_END) < types.indexOf(EventType.STATE_SNAPSHOT), 'message ends, then state')
  const snapshot: any = events.find(e => e.type === EventType.STATE_SNAPSHOT)
  t.same(JSON.parse(textOf(events)), finished.result, 'the concatenated text is the final result')
  t.same(snapshot.snapshot, finished.result, 'STATE_SNAPSHOT is the result')
  t.same(agent.state, finished.result, "the client's state is the result")
  t.equal(agent.messages.find(m => m.role === 'assistant')?.content, textOf(events), 'and its assistant message the text')
  t.ok(events.some((e: any) => e.type === EventType.CUSTOM && e.name === 'amk.progress'), 'progress as CUSTOM')
  const rows = await app.db.query<{ stream_id: string, status: string }>('SELECT stream_id, status FROM usage_ledger')
  t.match(rows, [{ stream_id: (events[0] as any).metadata.streamId, status: 'success' }], 'one ledger row')
})

t.test('agent method: the input may be the last user message (JSON); items stream as CUSTOM events', async t => {
  const { base } = await setup(t)
  const agent = new HttpAgent({
    url: `${base}/api/ag-ui/travel/getDestinationRecommendations`,
    headers: premium,
    initialMessages: [
      { id: 'u0', role: 'user', content: 'hello' },
      { id: 'u1', role: 'user', content: JSON.stringify(ROUTES.recommendations.input) }
    ]
  })
  const events: BaseEvent[] = []
  let error: unknown
  await agent.runAgent({}, { onEvent: ({ event }) => { events.push(event) } }).catch(err => { error = err })
  t.error(error)
  checkEvents(t, events)
  const finished: any = events.at(-1)
  t.equal(finished.type, EventType.RUN_FINISHED)
  const partials = events.filter((e: any) => e.type === EventType.CUSTOM && e.name === 'amk.partial')
  t.same(partials.map((e: any) => e.value.data), finished.result.recommendations, 'one amk.partial per recommendation')
})

t.test('bad input: a 400 in the error shape before the stream opens; no agent:streaming: 403', async t => {
  const { base } = await setup(t)
  const url = `${base}/api/ag-ui/content/generateBlogPost`
  const missing = await runHttpAgent(url, premium, { runId: 'r-missing' })
  t.equal(missing.error?.status, 400, 'no input → 400')
  t.match(missing.error?.payload, { code: 'AMK_VALIDATION', message: /forwardedProps\.input/, requestId: String })
  t.equal(missing.events.length, 0, 'no event')
  const invalid = await runHttpAgent(url, premium, { runId: 'r-bad', forwardedProps: { input: { topic: 1 } } })
  t.equal(invalid.error?.status, 400)
  t.match(invalid.error?.payload, { statusCode: 400, code: 'AMK_VALIDATION', details: [{ field: /input/ }] })
  const notRunInput = await post(base, 'content/generateBlogPost', { input: BLOG })
  t.equal(notRunInput.status, 400, 'a body that is not a RunAgentInput')
  t.match(await notRunInput.json(), { code: 'AMK_VALIDATION', requestId: String })
  const forbidden = await post(base, 'content/generateBlogPost', runInput('r-user', { forwardedProps: { input: BLOG } }), user)
  t.equal(forbidden.status, 403, 'a user lacks agent:streaming')
  t.match(await forbidden.json(), { code: 'AMK_FORBIDDEN' })
  const workflow = await runHttpAgent(`${base}/api/ag-ui/workflows/trip-package`, premium, {
    runId: 'r-trip-bad', forwardedProps: { input: { ...TRIP, returnDate: '2029-01-01' } }
  })
  t.equal(workflow.error?.status, 400, 'an invalid workflow input → 400')
  t.match(workflow.error?.payload, { code: 'AMK_VALIDATION', details: [{ field: 'input.returnDate' }] })
})

t.test('limits: a spent budget and a rate limit refuse before the stream opens, as on the native routes', async t => {
  const { base } = await setup(t, {
    BUDGETS: '{"premium":{"tokens":1}}',
    RATE_LIMIT_EXEMPT_ROLES: 'internal',
    RATE_LIMIT_PREMIUM_MULTIPLIER: '1',
    RATE_LIMIT_OVERRIDES: JSON.stringify({ global: 10_000, 'content.generateBlogPost': 2 })
  })
  const body = (runId: string) => runInput(runId, { forwardedProps: { input: BLOG } })
  const first = await post(base, 'content/generateBlogPost', body('b1'))
  t.equal(first.status, 200, 'the first run spends the budget')
  t.equal(framesOf(await first.text()).at(-1)?.event.type, EventType.RUN_FINISHED)
  const spent = await post(base, 'content/generateBlogPost', body('b2'))
  t.equal(spent.status, 429)
  t.ok(spent.headers.get('retry-after'), 'Retry-After')
  t.match(await spent.json(), { code: 'AMK_BUDGET_EXCEEDED', details: { scope: 'budget' }, requestId: String })
  const limited = await post(base, 'content/generateBlogPost', body('b3'))
  t.equal(limited.status, 429)
  t.match(await limited.json(), { code: 'AMK_RATE_LIMITED', details: { scope: 'content.generateBlogPost' } },
    'the method scope the native stream route counts')
})

t.test('a provider failure is RUN_ERROR with our code; the ledger has the error row', async t => {
  const gemini = await startGeminiServer(() => ({ status: 500 }))
  t.teardown(() => gemini.close())
  const { app, base } = await setup(t, {
    GEMINI_API_KEY: 'k', GEMINI_BASE_URL: gemini.url, LLM_RETRY_BASE_MS: '5', LLM_TIMEOUT_MS: '2000'
  })
  const { events, error } = await runHttpAgent(`${base}/api/ag-ui/content/generateBlogPost`, premium, {
    runId: 'run-fail', forwardedProps: { input: BLOG }
  })
  t.notOk(error?.status, 'no HTTP error: the stream had opened')
  checkEvents(t, events)
  t.match(events.at(-1), { type: EventType.RUN_ERROR, code: 'AMK_LLM_UNAVAILABLE', message: String }, 'RUN_ERROR last')
  t.notOk(events.some(e => e.type === EventType.RUN_FINISHED))
  const rows = await app.db.query<{ status: string }>('SELECT status FROM usage_ledger')
  t.match(rows, [{ status: 'error' }])
})

t.test('Last-Event-ID resumes with the same ids; each connection is a valid AG-UI run; 204 at the end', async t => {
  const { base } = await setup(t)
  const body = runInput('run-resume', { forwardedProps: { input: BLOG } })
  const first = framesOf(await (await post(base, 'content/generateBlogPost', body)).text())
  checkEvents(t, first.map(f => f.event))
  const ids = first.filter(f => f.id).map(f => f.id!)
  t.ok(ids.every((id, i) => i === 0 || Number(id.split('-').at(-1)) > Number(ids[i - 1].split('-').at(-1))),
    'ids <streamId>-<seq>, increasing')
  const contents = first.filter(f => f.event.type === EventType.TEXT_MESSAGE_CONTENT)
  const cut = contents[Math.floor(contents.length / 2)]
  t.ok(cut.id, 'a content frame carries its id')
  const resumedRes = await post(base, 'content/generateBlogPost', body, { ...premium, 'last-event-id': cut.id! })
  t.equal(resumedRes.status, 200)
  const resumed = framesOf(await resumedRes.text())
  const after = first.slice(first.indexOf(cut) + 1)
  t.same(resumed.filter(f => f.id).map(f => f.id), after.filter(f => f.id).map(f => f.id), 'the same ids after the cut')
  t.match(resumed.slice(0, 2).map(f => f.event), [
    { type: EventType.RUN_STARTED, runId: 'run-resume' },
    { type: EventType.TEXT_MESSAGE_START, messageId: cut.event.messageId }
  ], 'RUN_STARTED, then the text message re-opened')
  checkEvents(t, resumed.map(f => f.event))
  const text = textOf(first.slice(0, first.indexOf(cut) + 1).map(f => f.event)) + textOf(resumed.map(f => f.event))
  t.same(JSON.parse(text), first.at(-1)!.event.result, 'text before the cut + resumed text = the result')

  // The same through HttpAgent: a resumed run it accepts as valid.
  const viaAgent = await runHttpAgent(`${base}/api/ag-ui/content/generateBlogPost`, { ...premium, 'last-event-id': cut.id! },
    { runId: 'run-resume', forwardedProps: { input: BLOG } })
  t.error(viaAgent.error)
  t.equal(viaAgent.events.at(-1)?.type, EventType.RUN_FINISHED)

  const end = await post(base, 'content/generateBlogPost', body, { ...premium, 'last-event-id': ids.at(-1)! })
  t.equal(end.status, 204, 'resumed at the end: nothing follows')
  const foreign = await post(base, 'content/generateBlogPost', body, { ...premium, 'last-event-id': 'st_nope-3' })
  t.equal(foreign.status, 410, 'an unknown stream is gone')
  t.match(await foreign.json(), { code: 'AMK_GONE' })
})

t.test('cancel: POST /api/stream/:streamId/cancel ends the run with RUN_ERROR CANCELLED', async t => {
  const gemini = await startGeminiServer(stalling)
  t.teardown(() => gemini.close())
  const { base } = await setup(t, { GEMINI_API_KEY: 'k', GEMINI_BASE_URL: gemini.url })
  const events: any[] = []
  const agent = new HttpAgent({ url: `${base}/api/ag-ui/content/generateBlogPost`, headers: premium })
  const running = agent.runAgent({ runId: 'run-cancel', forwardedProps: { input: BLOG } }, {
    onEvent: ({ event }) => { events.push(event) }
  }).catch(err => err)
  const started = await until(() => events.find(e => e.type === EventType.TEXT_MESSAGE_CONTENT) && events[0])
  const cancel = await fetch(`${base}/api/stream/${started.metadata.streamId}/cancel`, { method: 'POST', headers: premium })
  t.match(await cancel.json(), { success: true, status: 'cancelled' })
  await running
  checkEvents(t, events)
  t.match(events.at(-1), { type: EventType.RUN_ERROR, code: 'CANCELLED' })
  await until(() => gemini.aborted.length > 0)
  t.pass('the provider call was aborted')
})

t.test('workflow: steps paired, one text message per step, the run as the last snapshot', async t => {
  const { app, base } = await setup(t)
  const url = `${base}/api/ag-ui/workflows/trip-package`
  const { agent, events, error } = await runHttpAgent(url, admin, { runId: 'trip-1', forwardedProps: { input: TRIP } })
  t.error(error)
  checkEvents(t, events)
  t.equal(events.at(-1)?.type, EventType.RUN_FINISHED, 'RUN_FINISHED last')
  const started = events.filter((e: any) => e.type === EventType.STEP_STARTED).map((e: any) => e.stepName)
  const finished = events.filter((e: any) => e.type === EventType.STEP_FINISHED).map((e: any) => e.stepName)
  t.same([...started].sort(), ['flights', 'hotels', 'itinerary'], 'STEP_STARTED per step')
  t.same([...finished].sort(), [...started].sort(), 'each STEP_STARTED has its STEP_FINISHED')
  for (const name of started) {
    const types = events.map((e: any) => e.stepName === name ? e.type : null)
    t.ok(types.indexOf(EventType.STEP_STARTED) < types.indexOf(EventType.STEP_FINISHED), `${name}: started, then finished`)
  }
  const view: any = events.findLast(e => e.type === EventType.STATE_SNAPSHOT)
  t.match(view.snapshot, { status: 'completed', workflowName: 'trip-package', runId: (events[0] as any).metadata.coordinatorRunId })
  t.same((events.at(-1) as any).result, view.snapshot.result, 'RUN_FINISHED.result is the run result')
  t.same(agent.state, view.snapshot, "the client's state is the run")
  const starts = events.filter((e: any) => e.type === EventType.TEXT_MESSAGE_START)
  const messages = new Set(starts.map((e: any) => e.messageId))
  t.equal(messages.size, 3, 'one text message per step')
  for (const messageId of messages) {
    const index = Number(String(messageId).split('-').at(-1))
    t.same(JSON.parse(textOf(events, String(messageId))), view.snapshot.steps[index].data, `step ${index}: text = output`)
  }
  const deltas = events.filter(e => e.type === EventType.STATE_DELTA)
  t.equal(deltas.length, 3, 'one STATE_DELTA per completed step')
  const rows = await app.db.query<{ n: number }>('SELECT count(*)::int AS n FROM usage_ledger')
  t.equal(rows[0].n, 3, 'a ledger row per step')
})

t.test('workflow: failed steps are STEP_FINISHED + CUSTOM amk.step-failed; a failed run ends with RUN_ERROR', async t => {
  const gemini = await startGeminiServer(() => ({ status: 500 }))
  t.teardown(() => gemini.close())
  const { base } = await setup(t, {
    GEMINI_API_KEY: 'k', GEMINI_BASE_URL: gemini.url, LLM_RETRY_BASE_MS: '5', LLM_TIMEOUT_MS: '2000'
  })
  const { events, error } = await runHttpAgent(`${base}/api/ag-ui/workflows/trip-package`, admin, {
    runId: 'trip-fail', forwardedProps: { input: TRIP }
  })
  t.notOk(error?.status, 'the stream opened')
  checkEvents(t, events)
  const failed = events.filter((e: any) => e.type === EventType.CUSTOM && e.name === 'amk.step-failed')
  t.ok(failed.length > 0, `${failed.length} failed step(s)`)
  for (const event of failed as any[]) {
    t.match(event.value, { stepName: String, status: 'failed', error: { code: 'AMK_LLM_UNAVAILABLE' } })
    t.ok(events.some((e: any) => e.type === EventType.STEP_FINISHED && e.stepName === event.value.stepName))
  }
  const view: any = events.findLast(e => e.type === EventType.STATE_SNAPSHOT)
  t.equal(view.snapshot.status, 'failed')
  t.match(events.at(-1), { type: EventType.RUN_ERROR, code: view.snapshot.error.code }, 'RUN_ERROR with the run\'s code')
})

t.test('workflow: the same RunAgentInput joins the live run with the same ids; Last-Event-ID skips', async t => {
  let release!: () => void
  const gate = new Promise<void>(resolve => { release = resolve })
  const gemini = await startGeminiServer(async request => { await gate; return { ...modelAnswer(request), chunks: 8 } })
  t.teardown(() => gemini.close())
  const { app, base } = await setup(t, { GEMINI_API_KEY: 'k', GEMINI_BASE_URL: gemini.url })
  const body = runInput('trip-join', { forwardedProps: { input: TRIP } })
  const firstRes = await post(base, 'workflows/trip-package', body, admin)
  const runId = firstRes.headers.get('x-run-id')
  const firstText = firstRes.text()
  await until(() => gemini.requests.length > 0)
  const again = await post(base, 'workflows/trip-package', body, admin)
  t.equal(again.headers.get('x-run-id'), runId, 'the same coordinator run')
  t.equal(again.headers.get('idempotent-replayed'), 'true')
  const againText = again.text()
  const cutId = `${runId}-2`
  const resumedText = (await post(base, 'workflows/trip-package', body, { ...admin, 'last-event-id': cutId })).text()
  release()
  const first = framesOf(await firstText)
  checkEvents(t, first.map(f => f.event))
  t.equal(first.at(-1)?.event.type, EventType.RUN_FINISHED)
  const replay = framesOf(await againText)
  t.same(replay.map(f => f.id), first.map(f => f.id), 'the joined request gets the same frames and ids')
  t.same(replay.slice(1).map(f => f.event), first.slice(1).map(f => f.event), 'and the same events')
  t.match(replay[0].event.metadata, { coordinatorRunId: runId, replayed: true }, 'RUN_STARTED says it joined')
  const resumed = framesOf(await resumedText)
  const cut = first.findIndex(f => f.id === cutId)
  t.same(resumed.filter(f => f.id).map(f => f.id), first.slice(cut + 1).filter(f => f.id).map(f => f.id), 'ids after the cut')
  t.match(resumed.slice(0, 3).map(f => f.event), [
    { type: EventType.RUN_STARTED, runId: 'trip-join' },
    { type: EventType.STATE_SNAPSHOT },
    { type: EventType.STEP_STARTED, stepName: first[cut].event.stepName }
  ], 'RUN_STARTED, the progress state, then the step open at the cut')
  checkEvents(t, resumed.map(f => f.event))
  t.same(resumed.at(-1)?.event, first.at(-1)?.event, 'the same end')

  const later = framesOf(await (await post(base, 'workflows/trip-package', body, admin)).text())
  t.same(later.map(f => f.event.type), [
    EventType.RUN_STARTED, EventType.STATE_SNAPSHOT, EventType.STATE_SNAPSHOT, EventType.RUN_FINISHED
  ], 'once ended, the run is replayed as a summary')
  t.same(later.at(-1)?.event.result, first.at(-1)?.event.result)
  const runs = await app.db.query<{ n: number }>('SELECT count(*)::int AS n FROM workflow_runs')
  t.equal(runs[0].n, 1, 'one run for the four requests')
  const other = runInput('trip-join', { forwardedProps: { input: { ...TRIP, travelers: 3 } } })
  const different = await post(base, 'workflows/trip-package', other, admin)
  t.equal(different.status, 422, 'the same runId with another input')
  t.match(await different.json(), { code: 'AMK_UNPROCESSABLE' })
})

t.test('OpenAPI: every AG-UI route, tagged ag-ui, with the RunAgentInput body and an event-stream response', async t => {
  const app = await buildStreams(t)
  const doc = (await app.inject('/openapi.json')).json()
  const paths = Object.keys(doc.paths).filter(p => p.startsWith('/api/ag-ui/'))
  const methods = Object.values(app.agents.definitions).flatMap(d => Object.keys(d.methods).map(m => `/api/ag-ui/${d.name}/${m}`))
  t.same(paths.filter(p => !p.includes('/workflows/')).sort(), methods.sort(), 'a route per agent method')
  t.same(paths.filter(p => p.includes('/workflows/')).sort(),
    Object.keys(WORKFLOWS).sort().map(w => `/api/ag-ui/workflows/${w}`), 'a route per predefined workflow')
  for (const path of paths) {
    const op = doc.paths[path].post
    t.same(op.tags, ['ag-ui'], path)
    t.same(op.requestBody.content['application/json'].schema, { $ref: '#/components/schemas/AgUiRunAgentInput' })
    t.ok(op.responses['200'].content['text/event-stream'].schema, `${path}: text/event-stream`)
  }
})

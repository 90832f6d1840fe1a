// The MCP server at /mcp through the official SDK client (Client + StreamableHTTPClientTransport) against a
// listening app whose provider is the real @google/genai SDK talking to the local Gemini protocol server:
// tools filtered by role with self-contained schemas; agent methods and workflows called with valid and
// invalid arguments; budget and rate-limit refusals as tool errors with our codes, sharing the REST routes'
// counters; a cancelled call (notifications/cancelled, or the client going away) aborting the provider
// request and leaving a cancelled ledger row; and the ledger rows of the calls.
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import type { RequestOptions } from '@modelcontextprotocol/sdk/shared/protocol.js'
import type { CallToolResult, Progress } from '@modelcontextprotocol/sdk/types.js'
import { startGeminiServer, type GeminiServer } from '../fixtures/gemini-server.js'
import { modelAnswer } from '../agents/support.js'
import { build, needs, redisPrefix, REDIS_URL } from '../support.js'
import { listen, stalling, until } from '../streams/support.js'
import { hasReferences } from '../../src/protocols/mcp-schema.js'
import { CALL_META, ERROR_META } from '../../src/protocols/mcp-server.js'

const KEYS = {
  admin: 'amk_mcp_admin_key_0123456789abcdefghijk',
  user: 'amk_mcp_user_key_0123456789abcdefghijkl',
  limited: 'amk_mcp_limited_key_0123456789abcdefghi',
  premium: 'amk_mcp_premium_key_0123456789abcdefghi'
}
type Who = keyof typeof KEYS
const headers = (who: Who) => ({ 'x-api-key': KEYS[who] })

/** A topic that makes the Gemini fixture stall (streamed) or hang (not streamed) until the client goes away. */
const STALL = 'Stalltown'
const FLIGHT = { from: 'Cairo', to: 'Paris', date: '2027-03-10' }

interface Setup { app: FastifyInstance, gemini: GeminiServer, base: string }

async function setup (t: Test): Promise<Setup> {
  const gemini = await startGeminiServer(request =>
    request.prompt.includes(STALL) ? (request.stream ? stalling(request) : { hang: true }) : modelAnswer(request))
  t.teardown(() => gemini.close())
  const app = await build(t, {
    env: {
      VALID_API_KEYS: `${KEYS.admin}:admin,${KEYS.user}:user,${KEYS.limited}:user,${KEYS.premium}:premium`,
      GEMINI_API_KEY: 'test-key',
      GEMINI_BASE_URL: gemini.url,
      LLM_MAX_RETRIES: '0',
      BUDGETS: JSON.stringify({ premium: { tokens: 1 } }),
      RATE_LIMIT_OVERRIDES: JSON.stringify({ 'travel.getVisaRequirements': 2 }),
      ...(needs('redis') ? {} : { REDIS_URL, REDIS_KEY_PREFIX: redisPrefix() })
    }
  })
  return { app, gemini, base: await listen(app) }
}

async function connect (t: Test, base: string, who: Who): Promise<Client> {
  const client = new Client({ name: 'mcp-test', version: '1.0.0' })
  const transport = new StreamableHTTPClientTransport(new URL(`${base}/mcp`), {
    requestInit: { headers: headers(who) }
  })
  await client.connect(transport)
  t.teardown(() => client.close())
  return client
}

/** tools/call through the SDK client (this server always answers the current result shape, with content). */
async function call (client: Client, name: string, args: Record<string, unknown>, options?: RequestOptions) {
  return await client.callTool({ name, arguments: args }, undefined, options) as CallToolResult
}

const errorOf = (result: CallToolResult) => result._meta?.[ERROR_META] as
  { code: string, message: string, details?: any } | undefined

/** Rows of the usage ledger for one caller (by the caller id /api/usage/me reports). */
async function ledger (app: FastifyInstance, who: Who) {
  const me = await app.inject({ url: '/api/usage/me', headers: headers(who) })
  const rows = await app.db.query<{
    agent: string, method: string, status: string, input_tokens: number, output_tokens: number, cost_usd: string
  }>(
    'SELECT agent, method, status, input_tokens, output_tokens, cost_usd FROM usage_ledger ' +
      'WHERE caller_id = $1 ORDER BY id',
    [me.json().callerId]
  )
  return { rows, totals: me.json().totals }
}

t.test('MCP over Streamable HTTP with the SDK client', async t => {
  const { app, gemini, base } = await setup(t)

  t.test('tools/list is filtered by role; schemas are self-contained objects', async t => {
    const user = await connect(t, base, 'user')
    const admin = await connect(t, base, 'admin')
    const userTools = (await user.listTools()).tools
    const adminTools = (await admin.listTools()).tools
    const names = (tools: typeof userTools) => tools.map(tool => tool.name)
    const methods = Object.values(app.agents.definitions)
      .flatMap(d => Object.keys(d.methods).map(m => `${d.name}_${m}`))
    const workflows = ['workflow_trip-package', 'workflow_trip-campaign', 'workflow_launch-plan']
    t.same(names(userTools).sort(), [...methods, ...workflows].sort(), 'a user: every agent method and workflow')
    t.same(names(adminTools).sort(), [...methods, ...workflows, 'agents_stats', 'cache_clear'].sort(),
      'an admin: also the management tools')
    for (const tool of adminTools) {
      t.equal(tool.inputSchema.type, 'object', `${tool.name} input is an object schema`)
      t.equal(tool.outputSchema?.type, 'object', `${tool.name} output is an object schema`)
      t.notOk(hasReferences(tool.inputSchema) || hasReferences(tool.outputSchema), `${tool.name}: no $ref or $id`)
    }
    const search = userTools.find(tool => tool.name === 'travel_searchFlights')!
    t.same(search.inputSchema.required, ['from', 'to', 'date'], 'the method input schema')

    const forbidden = await call(user, 'cache_clear', { agent: 'travel' })
    t.equal(forbidden.isError, true, 'calling an unlisted tool is a tool error')
    t.match(errorOf(forbidden), { code: 'AMK_FORBIDDEN', details: { permission: 'cache:manage', role: 'user' } })
    t.match(forbidden.content, [{ type: 'text', text: /^AMK_FORBIDDEN: / }])
    const unknown = await call(user, 'travel_teleport', {})
    t.match(errorOf(unknown), { code: 'AMK_NOT_FOUND', details: { tool: 'travel_teleport' } })

    const stats = await call(admin, 'agents_stats', {})
    t.notOk(stats.isError)
    t.same((stats.structuredContent as any).agents.map((a: any) => a.agent).sort(), ['content', 'innovation', 'travel'])
    const cleared = await call(admin, 'cache_clear', { agent: 'content' })
    t.match(cleared.structuredContent, { success: true, agent: 'content', deleted: Number })
  })

  t.test('an agent method: structured output, token progress; invalid arguments are AMK_VALIDATION', async t => {
    const client = await connect(t, base, 'user')
    const progress: Progress[] = []
    const before = gemini.requests.length
    const result = await call(client, 'travel_searchFlights', FLIGHT, { onprogress: p => progress.push(p) })
    t.notOk(result.isError)
    t.match(result.structuredContent, { route: FLIGHT, flights: Array })
    t.same(JSON.parse((result.content as Array<{ text: string }>)[0].text), result.structuredContent,
      'a text copy of the output')
    t.match(result._meta?.[CALL_META], { cached: false, traceId: String, usage: { inputTokens: Number } })
    t.equal(gemini.requests.length, before + 1, 'one provider call')
    t.ok(gemini.requests.at(-1)!.stream, 'streamed, since the client asked for progress')
    t.ok(progress.length >= 1, `${progress.length} progress notification(s) while tokens arrived`)
    t.match(progress[0], { progress: Number, message: /characters generated/ })

    const rest = await app.inject({
      method: 'POST', url: '/api/agents/travel/searchFlights', headers: headers('user'), payload: FLIGHT
    })
    t.equal(rest.json().cached, true, 'the REST route is served from the same response cache')
    t.same(rest.json().data, result.structuredContent, 'with the same data')

    const invalid = await call(client, 'travel_searchFlights', { from: 'C', date: 'soon' })
    t.equal(invalid.isError, true)
    const error = errorOf(invalid)!
    t.equal(error.code, 'AMK_VALIDATION')
    t.same(error.details.map((d: { field: string }) => d.field).sort(), ['input.date', 'input.from', 'input.to'])
    t.match(invalid.content, [{ type: 'text', text: /^AMK_VALIDATION: .*input\.to/ }])
    t.equal(gemini.requests.length, before + 1, 'no provider call for invalid arguments')
  })

  t.test('a workflow: the run as output, step progress; invalid arguments are AMK_VALIDATION', async t => {
    const client = await connect(t, base, 'user')
    const progress: Progress[] = []
    const input = { industry: 'travel', problem: 'Booking tours is slow' }
    const result = await call(client, 'workflow_launch-plan', input, { onprogress: p => progress.push(p) })
    t.notOk(result.isError, (result.content as Array<{ text: string }>)[0].text.slice(0, 200))
    const run = result.structuredContent as any
    t.match(run, { workflowName: 'launch-plan', status: 'completed', success: true })
    t.equal(run.steps.length, 4)
    t.equal((result._meta?.[CALL_META] as { runId: string }).runId, run.runId)
    t.same(progress.map(p => p.progress), progress.map((_p, i) => i + 1), 'progress counts step events')
    t.equal(progress.at(-1)?.progress, progress.at(-1)?.total, 'every step started and finished')
    const stored = await app.inject({ url: `/api/coordinator/runs/${run.runId}`, headers: headers('user') })
    t.equal(stored.json().status, 'completed', 'the run is stored like a REST run')

    const invalid = await call(client, 'workflow_trip-package', { from: 'Cairo' })
    t.match(errorOf(invalid), { code: 'AMK_VALIDATION', details: [{ field: String }] })
  })

  t.test('a spent budget is a tool error AMK_BUDGET_EXCEEDED, as on the REST route', async t => {
    const client = await connect(t, base, 'premium')
    const first = await call(client, 'content_researchTopic', { topic: 'Nile cruises' })
    t.notOk(first.isError, 'the first call runs (nothing spent yet)')
    const refused = await call(client, 'content_researchTopic', { topic: 'Red Sea diving' })
    t.equal(refused.isError, true)
    t.match(errorOf(refused), {
      code: 'AMK_BUDGET_EXCEEDED',
      message: /budget/,
      details: { scope: 'budget', limit: 1 }
    })
    const rest = await app.inject({
      method: 'POST', url: '/api/agents/content/researchTopic', headers: headers('premium'), payload: { topic: 'Petra' }
    })
    t.equal(rest.statusCode, 429, 'the REST route refuses the same caller')
    t.equal(rest.json().code, 'AMK_BUDGET_EXCEEDED')
  })

  t.test('a rate limit is a tool error AMK_RATE_LIMITED, counted with the REST route', async t => {
    const client = await connect(t, base, 'limited')
    const visa = (destination: string) => ({ nationality: 'Egyptian', destination })
    const visaRoute = {
      method: 'POST' as const,
      url: '/api/agents/travel/getVisaRequirements',
      headers: headers('limited')
    }
    const rest = await app.inject({ ...visaRoute, payload: visa('France') })
    t.equal(rest.statusCode, 200, 'one REST call')
    const second = await call(client, 'travel_getVisaRequirements', visa('Japan'))
    t.notOk(second.isError, (second.content as Array<{ text: string }>)[0].text.slice(0, 200))
    const third = await call(client, 'travel_getVisaRequirements', visa('Peru'))
    t.equal(third.isError, true, 'the third call in the window is refused')
    t.match(errorOf(third), {
      code: 'AMK_RATE_LIMITED',
      details: { scope: 'travel.getVisaRequirements', limit: 2, retryAfterSeconds: Number }
    })
    const other = await call(client, 'travel_searchFlights', { ...FLIGHT, to: 'Rome' })
    t.notOk(other.isError, 'another method of the agent still runs')
    const again = await app.inject({ ...visaRoute, payload: visa('Chile') })
    t.equal(again.statusCode, 429, 'and the REST route is refused too: one counter')
  })

  t.test('cancelling a call aborts the provider request; the ledger says cancelled', async t => {
    const client = await connect(t, base, 'admin')
    const aborted = gemini.aborted.length
    const controller = new AbortController()
    let progressed: () => void
    const firstProgress = new Promise<void>(resolve => { progressed = resolve })
    const running = call(client, 'content_generateBlogPost', { topic: `${STALL} by night`, length: 600 }, {
      signal: controller.signal,
      onprogress: () => progressed()
    })
    await firstProgress
    t.equal(app.agents.inFlight, 1, 'the call runs, its provider stream stalled')
    controller.abort('changed my mind')
    await t.rejects(running, 'the client gives up on the call')
    await until(() => gemini.aborted.length > aborted)
    t.ok(gemini.aborted.at(-1)!.prompt.includes(STALL), 'notifications/cancelled aborted the provider request')

    // The client going away (the HTTP response closes) aborts a call too: here a non-streamed, hanging one.
    const leaving = await connect(t, base, 'admin')
    const hanging = call(leaving, 'content_researchTopic', { topic: `${STALL} history` })
    hanging.catch(() => {})
    await until(() => gemini.requests.at(-1)?.prompt.includes(`${STALL} history`))
    await leaving.close()
    await until(() => gemini.aborted.length > aborted + 1)
    t.ok(gemini.aborted.at(-1)!.prompt.includes(`${STALL} history`), 'closing the client aborted the provider request')
    await until(() => app.agents.inFlight === 0)

    const { rows } = await until(async () => {
      const found = await ledger(app, 'admin')
      return found.rows.filter(r => r.status === 'cancelled').length === 2 && found
    })
    t.same(
      rows.filter(r => r.status === 'cancelled').map(r => `${r.agent}.${r.method}`),
      ['content.generateBlogPost', 'content.researchTopic'],
      'a cancelled ledger row for each aborted provider call'
    )
  })

  t.test('the ledger has a row for each provider call of the MCP calls', async t => {
    const { rows, totals } = await until(async () => {
      const found = await ledger(app, 'limited')
      return found.rows.length === 3 && found
    })
    t.same(rows.map(r => `${r.method}:${r.status}`),
      ['getVisaRequirements:success', 'getVisaRequirements:success', 'searchFlights:success'],
      'the REST call, the MCP call that ran and the MCP call of another method; none for refused calls')
    t.equal(totals.calls, 3, '/api/usage/me counts them')
    const user = await ledger(app, 'user')
    t.ok(user.rows.some(r => r.agent === 'travel' && r.method === 'searchFlights' && r.status === 'success'))
    t.ok(user.rows.filter(r => r.agent === 'innovation' || r.agent === 'content').length >= 4,
      'the workflow steps are in the ledger of the caller who ran it')
  })

  t.test('the same call over MCP and over REST gives the same usage figures and ledger rows', async t => {
    const client = await connect(t, base, 'user')
    const input = { budget: 3000, interests: ['food', 'history'], duration: 7, season: 'spring' }
    const mcp = await call(client, 'travel_getDestinationRecommendations', input)
    const rest = await app.inject({
      method: 'POST',
      url: '/api/agents/travel/getDestinationRecommendations',
      headers: { ...headers('user'), 'cache-control': 'no-cache' },
      payload: input
    })
    t.equal(rest.json().cached, false, 'the REST call bypassed the cache: a provider call of its own')
    t.same((mcp._meta?.[CALL_META] as { usage: unknown }).usage, rest.json().usage, 'the same usage')
    t.same(mcp.structuredContent, rest.json().data, 'the same data')
    const rows = await until(async () => {
      const found = (await ledger(app, 'user')).rows.filter(r => r.method === 'getDestinationRecommendations')
      return found.length === 2 && found
    })
    const figures = rows.map(({ status, input_tokens: input, output_tokens: output, cost_usd: cost }) =>
      ({ status, input, output, cost }))
    t.same(figures[0], figures[1], 'two ledger rows with the same figures')
    t.equal(figures[0].input, rest.json().usage.inputTokens)
  })

  // Last: the agent service refuses every invocation once it has been told to shut down.
  t.test('shutdown aborting a running call ends it as a tool error AMK_SHUTTING_DOWN', async t => {
    const client = await connect(t, base, 'admin')
    const running = call(client, 'innovation_analyzeTrends', { industry: `${STALL} tourism` })
    await until(() => app.agents.inFlight === 1)
    t.equal(app.agents.abortInFlight(), 1, 'the shutdown aborts the call')
    const result = await running
    t.equal(result.isError, true)
    t.match(errorOf(result), { code: 'AMK_SHUTTING_DOWN', details: { reason: /retry/ } })
  })
})

t.test('HTTP: credentials, methods and headers are checked in the error shape', async t => {
  const app = await build(t, { env: { VALID_API_KEYS: `${KEYS.user}:user` } })
  const initialize = {
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } }
  }
  const accept = 'application/json, text/event-stream'
  const anonymous = await app.inject({ method: 'POST', url: '/mcp', headers: { accept }, payload: initialize })
  t.equal(anonymous.statusCode, 401)
  t.match(anonymous.json(), { code: 'AMK_UNAUTHORIZED', requestId: String })
  t.match(anonymous.headers['www-authenticate'], /^Bearer/)

  for (const method of ['GET', 'DELETE'] as const) {
    const res = await app.inject({ method, url: '/mcp', headers: { ...headers('user'), accept: 'text/event-stream' } })
    t.equal(res.statusCode, 405, `${method} /mcp`)
    t.match(res.json(), { statusCode: 405, code: 'AMK_METHOD_NOT_ALLOWED', requestId: String })
    t.equal(res.headers.allow, 'POST')
  }

  const notAcceptable = await app.inject({
    method: 'POST', url: '/mcp', headers: { ...headers('user'), accept: 'application/json' }, payload: initialize
  })
  t.equal(notAcceptable.statusCode, 406)
  t.match(notAcceptable.json(), { code: 'AMK_NOT_ACCEPTABLE', requestId: String })

  const notJsonRpc = await app.inject({
    method: 'POST', url: '/mcp', headers: { ...headers('user'), accept }, payload: { hello: 'world' }
  })
  t.equal(notJsonRpc.statusCode, 400)
  t.match(notJsonRpc.json(), { code: 'AMK_VALIDATION', requestId: String })

  const version = await app.inject({
    method: 'POST',
    url: '/mcp',
    headers: { ...headers('user'), accept, 'mcp-protocol-version': '1999-01-01' },
    payload: { jsonrpc: '2.0', id: 2, method: 'tools/list' }
  })
  t.equal(version.statusCode, 400)
  t.match(version.json(), { code: 'AMK_BAD_REQUEST', details: { supported: Array } })

  const listed = await app.inject({
    method: 'POST',
    url: '/mcp',
    headers: { ...headers('user'), accept },
    payload: { jsonrpc: '2.0', id: 3, method: 'tools/list' }
  })
  t.equal(listed.statusCode, 200)
  t.match(listed.headers['content-type'], /^text\/event-stream/)
  t.ok(listed.headers['x-request-id'], 'the request id header goes out with the SDK transport\'s response')
  t.ok(listed.headers['ratelimit-limit'], 'and the global rate-limit headers')
  const message = JSON.parse(/^data: (.*)$/m.exec(listed.body)![1])
  t.match(message, { jsonrpc: '2.0', id: 3, result: { tools: Array } })
})

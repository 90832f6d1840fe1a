// Issue 14, acceptance 4: the three protocols share the agent service with the REST routes. The same call of
// content.generateBlogPost through MCP, REST invoke, the native stream, the AI SDK UI message stream and
// AG-UI: five ledger rows with the same tokens, cost and model; the caller's usage totals are their sum; and
// all five were counted under the method's one rate-limit scope (the sixth call is the last the limit allows,
// whichever protocol makes it, and the seventh is refused by MCP and REST alike).
import t from 'tap'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js'
import { build, needs, redisPrefix, REDIS_URL } from '../support.js'
import { listen } from '../streams/support.js'
import { ERROR_META } from '../../src/protocols/mcp-server.js'

const KEY = 'amk_parity_premium_key_0123456789abcdefg'
const INPUT = { topic: 'Protocol parity', type: 'how-to', length: 600 }
// Premium callers get RATE_LIMIT_PREMIUM_MULTIPLIER (2) × this: six calls a minute.
const METHOD_LIMIT = 3

t.test('MCP, REST, native stream, AI SDK and AG-UI give the same ledger, totals and limit counts', async t => {
  const app = await build(t, {
    env: {
      VALID_API_KEYS: `${KEY}:premium`,
      RATE_LIMIT_OVERRIDES: JSON.stringify({ 'content.generateBlogPost': METHOD_LIMIT }),
      ...(needs('redis') ? {} : { REDIS_URL, REDIS_KEY_PREFIX: redisPrefix() })
    }
  })
  const base = await listen(app)
  const headers = { 'x-api-key': KEY, 'content-type': 'application/json', 'cache-control': 'no-cache' }
  const client = new Client({ name: 'parity-test', version: '1.0.0' })
  await client.connect(new StreamableHTTPClientTransport(new URL(`${base}/mcp`), {
    requestInit: { headers: { 'x-api-key': KEY } }
  }))
  t.teardown(() => client.close())
  const mcpCall = async () =>
    await client.callTool({ name: 'content_generateBlogPost', arguments: INPUT }) as CallToolResult
  const post = async (path: string, body: unknown) => {
    const res = await fetch(`${base}${path}`, { method: 'POST', headers, body: JSON.stringify(body) })
    return { status: res.status, remaining: res.headers.get('ratelimit-remaining'), text: await res.text() }
  }

  // MCP first: it has no Cache-Control, and the response cache is still empty then.
  const viaMcp = await mcpCall()
  t.notOk(viaMcp.isError, 'MCP')
  const calls = {
    rest: await post('/api/agents/content/generateBlogPost', INPUT),
    stream: await post('/api/stream/blog', INPUT),
    aiSdk: await post('/api/stream/blog?format=ui-message-stream', INPUT),
    agUi: await post('/api/ag-ui/content/generateBlogPost', {
      threadId: 'parity',
      runId: 'parity-1',
      state: {},
      messages: [],
      tools: [],
      context: [],
      forwardedProps: { input: INPUT }
    })
  }
  for (const [name, call] of Object.entries(calls)) t.equal(call.status, 200, name)
  t.match(calls.stream.text, /event: complete/, 'the native stream completed')
  t.match(calls.aiSdk.text, /"type":"finish"/, 'the AI SDK stream finished')
  t.match(calls.agUi.text, /"type":"RUN_FINISHED"/, 'the AG-UI run finished')

  const me = (await app.inject({ url: '/api/usage/me', headers: { 'x-api-key': KEY } })).json()
  const rows = await app.db.query<{
    status: string, model: string, input_tokens: number, output_tokens: number, cost_usd: string
  }>(
    'SELECT status, model, input_tokens, output_tokens, cost_usd FROM usage_ledger WHERE caller_id = $1 ORDER BY id',
    [me.callerId]
  )
  t.equal(rows.length, 5, 'one ledger row per call, whichever protocol')
  for (const row of rows) t.same(row, rows[0], 'every row has the same status, model, tokens and cost')
  t.equal(rows[0].status, 'success')
  t.ok(rows[0].input_tokens > 0 && rows[0].output_tokens > 0, 'none came from the cache')
  const tokens = rows.reduce((sum, row) => sum + row.input_tokens + row.output_tokens, 0)
  t.match(me.totals, { calls: 5, totalTokens: tokens }, "the caller's usage totals are the sum of the five")

  const sixth = await post('/api/agents/content/generateBlogPost', INPUT)
  t.equal(sixth.status, 200, 'the sixth call is allowed…')
  t.equal(sixth.remaining, '0', '…and is the last: the five protocol calls were counted under the same scope')
  const refused = await mcpCall()
  t.equal(refused.isError, true, 'the seventh is refused over MCP…')
  t.match(refused._meta?.[ERROR_META], { code: 'AMK_RATE_LIMITED', details: { scope: 'content.generateBlogPost' } })
  const rest = await post('/api/agents/content/generateBlogPost', INPUT)
  t.equal(rest.status, 429, '…and over REST')
  t.match(JSON.parse(rest.text), { code: 'AMK_RATE_LIMITED', details: { scope: 'content.generateBlogPost' } })
})

// Budgets through the real agent service and invoke routes: two instances sharing one Redis keep a
// 1,000-token daily budget within one call's estimate, a refused call never reaches the provider, the
// 429 says when the budget resets, dollar and per-key budgets hold, and the usage endpoints report the
// ledger's numbers. The provider is the real offline provider, counted at its interface.
import t from 'tap'
import { Redis } from 'ioredis'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { build, needs, redisPrefix, REDIS_URL } from '../support.js'
import { createOfflineProvider } from '../../src/llm/offline.js'
import { offlineBuilder } from '../../src/agents/index.js'
import { EXPECTED_OUTPUT_TOKENS } from '../../src/agents/llm-call.js'
import type { LlmProvider } from '../../src/llm/types.js'

const KEY = 'amk_budget_test_user_key_0001'
const ADMIN_KEY = 'amk_budget_test_admin_key_0003'

/** The offline provider, with every call counted (and slowed a little so calls overlap). */
function countedProvider (): { provider: LlmProvider, calls: () => number } {
  const inner = createOfflineProvider({ build: offlineBuilder() })
  let calls = 0
  const provider: LlmProvider = {
    name: 'offline',
    async generate (request) {
      calls++
      await new Promise(resolve => setTimeout(resolve, 15))
      return inner.generate(request)
    },
    stream (request) { calls++; return inner.stream(request) },
    check: () => inner.check()
  }
  return { provider, calls: () => calls }
}

let n = 0
function visa (app: FastifyInstance, key = KEY): Promise<LightMyRequestResponse> {
  n++
  return app.inject({
    method: 'POST',
    url: '/api/agents/travel/getVisaRequirements',
    headers: { 'x-api-key': key, 'cache-control': 'no-cache' },
    payload: { destination: 'Japan', nationality: `Nation ${n}`, duration: 10 + (n % 300) }
  })
}

async function ledger (app: FastifyInstance, callerId: string) {
  const [row] = await app.db.query<{ calls: number, tokens: number, usd: number, max_input: number }>(
    `SELECT count(*)::int AS calls, coalesce(sum(input_tokens + output_tokens), 0)::int8 AS tokens,
            coalesce(sum(cost_usd), 0) AS usd, coalesce(max(input_tokens), 0) AS max_input
     FROM usage_ledger WHERE caller_id = $1`, [callerId])
  return row
}

async function rejections (app: FastifyInstance, dimension: string): Promise<number> {
  const values = (await app.meters.registry.getSingleMetric('budget_rejections_total')!.get()).values
  return values.find(v => v.labels.dimension === dimension)?.value ?? 0
}

t.test('a 1,000-token budget across two instances on one Redis', { skip: needs('redis') }, async t => {
  const env = {
    REDIS_URL,
    REDIS_KEY_PREFIX: redisPrefix(),
    VALID_API_KEYS: `${KEY}:user`,
    BUDGETS: '{"user":{"tokens":1000}}'
  }
  const { provider, calls } = countedProvider()
  const a = await build(t, { env, appOptions: { llmProvider: provider } })
  const b = await build(t, { env, db: null, appOptions: { llmProvider: provider, db: a.db } })
  const me = (await a.inject({ url: '/api/auth/me', headers: { 'x-api-key': KEY } })).json().id

  const burst = await Promise.all(Array.from({ length: 20 }, (_, i) => visa(i % 2 ? b : a)))
  let admitted = burst.filter(r => r.statusCode === 200).length
  const refused = burst.filter(r => r.statusCode === 429)
  t.ok(admitted >= 1, `${admitted} of 20 concurrent calls admitted`)
  t.equal(admitted + refused.length, 20, 'every other call was refused with 429')
  // Then one at a time until the budget refuses, alternating instances.
  let refusedAt = 0
  for (let i = 0; i < 20; i++) {
    const res = await visa(i % 2 ? a : b)
    if (res.statusCode !== 200) { refusedAt = Date.now(); refused.push(res); break }
    admitted++
  }
  t.equal(calls(), admitted, 'refused calls never reached the provider')
  const used = await ledger(a, me)
  t.equal(used.calls, admitted, 'one ledger row per admitted call')
  const oneEstimate = used.max_input + EXPECTED_OUTPUT_TOKENS
  t.ok(
    used.tokens >= 1000 && used.tokens <= 1000 + oneEstimate,
    `ledger holds ${used.tokens} tokens: spent, and within 1,000 + one estimate (${oneEstimate})`
  )

  const last = refused.at(-1)!
  const body = last.json()
  t.equal(body.code, 'AMK_BUDGET_EXCEEDED')
  t.match(body.message, /Daily token budget spent: \d+ tokens of 1000 tokens used today; it resets at /)
  const midnight = new Date()
  midnight.setUTCHours(24, 0, 0, 0)
  t.match(body.details, { scope: 'budget', dimension: 'tokens', limit: 1000, resetsAt: midnight.toISOString() })
  t.ok(body.details.used >= 1000)
  t.equal(last.headers['retry-after'], String(body.details.retryAfterSeconds))
  t.ok(
    Math.abs(refusedAt + body.details.retryAfterSeconds * 1000 - midnight.getTime()) <= 1000,
    'Retry-After is the time to the next UTC midnight'
  )
  t.equal(
    (await rejections(a, 'tokens')) + (await rejections(b, 'tokens')),
    refused.length,
    'budget_rejections_total counts every refusal'
  )

  const usage = (await b.inject({ url: '/api/usage/me', headers: { 'x-api-key': KEY } })).json()
  t.same(
    { calls: usage.totals.calls, tokens: usage.totals.totalTokens },
    { calls: used.calls, tokens: used.tokens },
    'usage/me equals the ledger'
  )
  t.equal(usage.today.totalTokens, used.tokens)
  t.same(usage.budget.tokens, { limit: 1000, used: used.tokens, remaining: 0 })
  t.equal(usage.budget.usd, null)
  t.equal(usage.budget.resetsAt, midnight.toISOString())
})

t.test('dollar budgets, per-key budgets, and counters seeded from the ledger (memory counters)', async t => {
  const env = {
    VALID_API_KEYS: `${KEY}:user,${ADMIN_KEY}:admin`,
    BUDGETS: '{"user":{"usd":0.001}}',
    LLM_PRICING: '{"offline":{"input":1,"output":1}}' // $1 per million tokens, so usage has a price
  }
  const { provider, calls } = countedProvider()
  const app = await build(t, { env, appOptions: { llmProvider: provider } })
  // A per-key budget set through the API when the key is created.
  const created = await app.inject({
    method: 'POST',
    url: '/api/auth/keys',
    headers: { 'x-api-key': ADMIN_KEY },
    payload: { name: 'tight budget', role: 'user', dailyTokenBudget: 1 }
  })
  t.equal(created.statusCode, 201)
  t.equal(created.json().dailyTokenBudget, 1, 'the key reports its own budget')
  const OTHER: string = created.json().key

  const codes: number[] = []
  for (let i = 0; i < 10 && !codes.includes(429); i++) codes.push((await visa(app)).statusCode)
  t.equal(codes.at(-1), 429, 'the dollar budget runs out')
  const me = (await app.inject({ url: '/api/auth/me', headers: { 'x-api-key': KEY } })).json().id
  const used = await ledger(app, me)
  t.ok(used.usd >= 0.001 && used.usd <= 0.001 + (used.max_input + EXPECTED_OUTPUT_TOKENS) / 1e6, `spent $${used.usd}`)
  const refusal = (await visa(app)).json()
  t.match(refusal.details, { scope: 'budget', dimension: 'usd', limit: 0.001 })
  t.match(refusal.message, /Daily dollar budget spent: \$0\.\d{4} of \$0\.0010 used today/)

  t.same(
    [(await visa(app, OTHER)).statusCode, (await visa(app, OTHER)).statusCode],
    [200, 429],
    "the key's own 1-token budget wins over the role budget"
  )
  t.match((await visa(app, OTHER)).json().details, { dimension: 'tokens', limit: 1 })
  const providerCalls = calls()

  // A new instance (fresh in-memory counters) sees today's usage in the ledger.
  const fresh = await build(t, { env, db: null, appOptions: { llmProvider: provider, db: app.db } })
  t.equal((await visa(fresh)).statusCode, 429, 'the new instance seeds its counter from the ledger')
  t.equal(calls(), providerCalls, 'and the provider was not called')
  const usage = (await fresh.inject({ url: '/api/usage/me', headers: { 'x-api-key': KEY } })).json()
  t.equal(usage.budget.usd.limit, 0.001)
  t.equal(usage.budget.usd.used, Math.round(used.usd * 1e8) / 1e8)
  t.equal(usage.budget.tokens, null)
})

t.test('a counter seeded while this replica\'s usage rows still wait to be written counts them', {
  skip: needs('redis')
}, async t => {
  const prefix = redisPrefix()
  const env = {
    REDIS_URL,
    REDIS_KEY_PREFIX: prefix,
    VALID_API_KEYS: `${KEY}:user`,
    BUDGETS: '{"user":{"tokens":1000}}',
    // Rows wait up to a second to be written, as 'durable' rows wait behind PGlite's journal.
    USAGE_WRITE_MODE: 'behind',
    USAGE_WRITE_BEHIND_MS: '1000'
  }
  const app = await build(t, { env, appOptions: { llmProvider: countedProvider().provider } })
  const codes: number[] = []
  for (let i = 0; i < 20 && !codes.includes(429); i++) codes.push((await visa(app)).statusCode)
  t.equal(codes.at(-1), 429, 'the token budget runs out')
  const redis = new Redis(REDIS_URL)
  t.teardown(() => redis.quit())
  const counters = await redis.keys(`${prefix}budget*`)
  t.ok(counters.length > 0, 'the budget counter is in Redis')
  await redis.del(...counters) // Redis lost it (a restart without persistence): the next call seeds it
  t.equal((await visa(app)).statusCode, 429, 'the seed includes the rows not yet written')
})

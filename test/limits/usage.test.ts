// GET /api/usage/me and GET /api/usage report what the usage ledger holds: the same totals the test
// computes from the rows it wrote, grouped by caller, agent, model and UTC day, within the period asked.
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { build } from '../support.js'
import { usagePeriod } from '../../src/limits/usage-report.js'

const USER_KEY = 'amk_usage_test_user_key_0001'
const OTHER_KEY = 'amk_usage_test_user_key_0002'
const ADMIN_KEY = 'amk_usage_test_admin_key_001'
const env = { VALID_API_KEYS: `${USER_KEY}:user,${OTHER_KEY}:user,${ADMIN_KEY}:admin` }

interface Row { caller: string, agent: string, model: string, at: string, input: number, output: number, cost: number }

async function callerId (app: FastifyInstance, key: string): Promise<string> {
  return (await app.inject({ url: '/api/auth/me', headers: { 'x-api-key': key } })).json().id
}

async function seed (app: FastifyInstance, rows: Row[]): Promise<void> {
  for (const row of rows) {
    await app.db.query(
      `INSERT INTO usage_ledger (created_at, caller_id, caller_type, role, agent, method, model, input_tokens, output_tokens, cost_usd, status)
      VALUES ($1, $2, 'api-key', 'user', $3, 'm', $4, $5, $6, $7, 'success')`,
      [row.at, row.caller, row.agent, row.model, row.input, row.output, row.cost]
    )
  }
}

function sum (rows: Row[]) {
  const inputTokens = rows.reduce((a, r) => a + r.input, 0)
  const outputTokens = rows.reduce((a, r) => a + r.output, 0)
  const costUsd = Math.round(rows.reduce((a, r) => a + r.cost, 0) * 1e8) / 1e8
  return { calls: rows.length, inputTokens, outputTokens, totalTokens: inputTokens + outputTokens, costUsd }
}

const today = new Date().toISOString().slice(0, 10)
const yesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10)

t.test('usage endpoints report the same numbers as the ledger', async t => {
  const app = await build(t, { env })
  const me = await callerId(app, USER_KEY)
  const other = await callerId(app, OTHER_KEY)
  const rows: Row[] = [
    {
      caller: me,
      agent: 'travel',
      model: 'gemini-2.5-flash',
      at: `${today}T00:00:01Z`,
      input: 100,
      output: 200,
      cost: 0.000123
    },
    {
      caller: me,
      agent: 'travel',
      model: 'gemini-2.5-flash',
      at: `${yesterday}T12:00:00Z`,
      input: 10,
      output: 20,
      cost: 0.00001
    },
    {
      caller: me,
      agent: 'content',
      model: 'gemini-2.5-pro',
      at: `${today}T00:00:02Z`,
      input: 300,
      output: 400,
      cost: 0.0051
    },
    {
      caller: other,
      agent: 'innovation',
      model: 'gemini-2.5-pro',
      at: `${today}T00:00:03Z`,
      input: 1000,
      output: 2000,
      cost: 0.03
    },
    { caller: me, agent: 'travel', model: 'gemini-2.5-flash', at: '2001-01-01T00:00:00Z', input: 5, output: 5, cost: 1 }
  ]
  await seed(app, rows)
  const mine = rows.filter(r => r.caller === me && r.at > '2002')

  const res = await app.inject({ url: '/api/usage/me', headers: { 'x-api-key': USER_KEY } })
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.equal(body.callerId, me)
  t.same(body.totals, sum(mine), 'own totals over the last 30 days')
  t.same(body.today, { day: today, ...sum(mine.filter(r => r.at.startsWith(today))) })
  t.same(
    body.byAgent.find((a: { agent: string }) => a.agent === 'travel'),
    { agent: 'travel', ...sum(mine.filter(r => r.agent === 'travel')) }
  )
  t.same(body.byDay.map((d: { day: string }) => d.day), [today, yesterday], 'newest day first')
  t.same(body.byDay[1], { day: yesterday, ...sum(mine.filter(r => r.at.startsWith(yesterday))) })
  t.same(body.byModel.map((m: { model: string }) => m.model).sort(), ['gemini-2.5-flash', 'gemini-2.5-pro'])
  t.equal(body.budget, null, 'no budget configured')

  const old = await app.inject({
    url: '/api/usage/me?from=2001-01-01&to=2001-01-01',
    headers: { 'x-api-key': USER_KEY }
  })
  t.same(old.json().totals, sum(rows.filter(r => r.at.startsWith('2001'))), 'a bare `to` date includes that whole day')

  const all = await app.inject({ url: '/api/usage', headers: { 'x-api-key': ADMIN_KEY } })
  t.equal(all.statusCode, 200)
  const report = all.json()
  const recent = rows.filter(r => r.at > '2002')
  t.same(report.totals, sum(recent))
  t.same(
    report.byCaller.find((c: { callerId: string }) => c.callerId === other),
    { callerId: other, ...sum(recent.filter(r => r.caller === other)) }
  )
  t.same(
    report.byModel.find((m: { model: string }) => m.model === 'gemini-2.5-pro'),
    { model: 'gemini-2.5-pro', ...sum(recent.filter(r => r.model === 'gemini-2.5-pro')) }
  )
  t.equal(report.rows.length, 4, 'one row per caller, agent, model and day')
  t.equal(report.truncated, false)
  t.same(report.rows.reduce((a: number, r: { totalTokens: number }) => a + r.totalTokens, 0), sum(recent).totalTokens)

  const filtered = (
    await app.inject({
      url: `/api/usage?caller=${encodeURIComponent(other)}&limit=1`,
      headers: { 'x-api-key': ADMIN_KEY }
    })
  ).json()
  t.same(filtered.totals, sum(recent.filter(r => r.caller === other)))
  t.same(filtered.byCaller.map((c: { callerId: string }) => c.callerId), [other])
})

t.test('permissions and query validation', async t => {
  const app = await build(t, { env })
  t.equal((await app.inject({ url: '/api/usage/me' })).statusCode, 401)
  const forbidden = await app.inject({ url: '/api/usage', headers: { 'x-api-key': USER_KEY } })
  t.equal(forbidden.statusCode, 403, 'GET /api/usage needs agent:stats')
  const bad = await app.inject({ url: '/api/usage?from=2025-02-01&to=2025-01-01', headers: { 'x-api-key': ADMIN_KEY } })
  t.equal(bad.statusCode, 400)
  t.equal(bad.json().code, 'AMK_VALIDATION')
  t.same(bad.json().details, [{ field: 'query.from', message: 'must be before query.to' }])
  t.equal(
    (await app.inject({ url: '/api/usage/me?from=yesterday', headers: { 'x-api-key': USER_KEY } })).statusCode,
    400
  )
  t.equal((await app.inject({ url: '/api/usage?limit=-1', headers: { 'x-api-key': ADMIN_KEY } })).statusCode, 400)
})

t.test('usagePeriod: defaults and inclusive dates', async t => {
  const now = Date.parse('2025-03-10T15:00:00Z')
  t.same(usagePeriod(undefined, undefined, now), {
    from: new Date('2025-02-09T00:00:00Z'),
    to: new Date('2025-03-11T00:00:00Z')
  })
  t.same(usagePeriod('2025-03-01', '2025-03-02', now), {
    from: new Date('2025-03-01T00:00:00Z'),
    to: new Date('2025-03-03T00:00:00Z')
  })
  t.same(usagePeriod('2025-03-01T10:00:00Z', '2025-03-01T11:00:00Z', now), {
    from: new Date('2025-03-01T10:00:00Z'),
    to: new Date('2025-03-01T11:00:00Z')
  })
  t.match(usagePeriod('2020-01-01', '2025-01-01', now), { field: 'query.from' })
})

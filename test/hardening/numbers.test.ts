// Issue 11: every number a client sends that reaches the database or arithmetic has a maximum in its
// schema, so an out-of-range value is a 400 naming the field — never a database error. Per-key budgets
// of 1e308 used to fail in the database (500); they now stop at the schema, on PGlite and PostgreSQL.
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { MAX_DAILY_COST_BUDGET_USD, MAX_DAILY_TOKEN_BUDGET } from '../../src/schemas/auth.js'
import { build, needs, postgresDatabase } from '../support.js'
import { ADMIN_KEY, MANAGEMENT_ENV } from '../routes/support.js'

const send = (app: FastifyInstance, method: 'GET' | 'POST', url: string, payload?: object) =>
  app.inject({ method, url, headers: { 'x-api-key': ADMIN_KEY }, ...(payload ? { payload } : {}) })

async function refusedNaming (
  t: Test,
  app: FastifyInstance,
  method: 'GET' | 'POST',
  url: string,
  payload: object | undefined,
  field: string
) {
  const reply = await send(app, method, url, payload)
  t.equal(reply.statusCode, 400, `${url} ${JSON.stringify(payload ?? '')}: 400`)
  t.match(reply.json(), { code: 'AMK_VALIDATION', details: [{ field: new RegExp(`${field}$`) }] }, `names ${field}`)
}

const backends: Array<{ name: string; skip: false | string; env: () => Promise<Record<string, string>>; db?: null }> = [
  { name: 'PGlite', skip: false, env: async () => ({}) },
  {
    name: 'PostgreSQL',
    skip: needs('postgres'),
    env: async () => ({ DATABASE_URL: await postgresDatabase() }),
    db: null
  }
]

for (const backend of backends) {
  t.test(
    `${backend.name}: key budgets past the maximum are 400 naming the field; the maximum itself is stored exactly`,
    { skip: backend.skip },
    async t => {
      const env = await backend.env()
      const app = await build(t, { env: { ...MANAGEMENT_ENV, ...env }, ...(backend.db === null ? { db: null } : {}) })
      for (const [field, value] of [
        ['dailyTokenBudget', 1e308],
        ['dailyCostBudgetUsd', 1e308],
        ['dailyTokenBudget', MAX_DAILY_TOKEN_BUDGET + 1],
        ['dailyCostBudgetUsd', 1e8],
        ['dailyTokenBudget', 2 ** 63]
      ] as const) {
        await refusedNaming(t, app, 'POST', '/api/auth/keys', { name: 'big', [field]: value }, field)
      }
      const created = await send(app, 'POST', '/api/auth/keys', {
        name: 'max',
        dailyTokenBudget: MAX_DAILY_TOKEN_BUDGET,
        dailyCostBudgetUsd: MAX_DAILY_COST_BUDGET_USD
      })
      t.equal(created.statusCode, 201)
      const listed = (await send(app, 'GET', '/api/auth/keys'))
        .json()
        .keys.find((k: { name: string }) => k.name === 'max')
      t.match(listed, { dailyTokenBudget: MAX_DAILY_TOKEN_BUDGET, dailyCostBudgetUsd: MAX_DAILY_COST_BUDGET_USD })
    }
  )
}

t.test('numeric query parameters and bodies have maxima: limits, counts, durations, timeouts', async t => {
  const app = await build(t, { env: MANAGEMENT_ENV })
  await refusedNaming(t, app, 'GET', '/api/agents/travel/traces?limit=1e308', undefined, 'limit')
  await refusedNaming(t, app, 'GET', '/api/auth/keys?limit=1e308', undefined, 'limit')
  await refusedNaming(t, app, 'GET', '/api/usage?limit=1e308', undefined, 'limit')
  await refusedNaming(t, app, 'POST', '/api/stream/cleanup', { maxIdleSeconds: 1e308 }, 'maxIdleSeconds')
  await refusedNaming(
    t,
    app,
    'POST',
    '/api/coordinator/parallel',
    { tasks: [{ agent: 'travel', method: 'searchFlights' }], timeoutMs: 1e308 },
    'timeoutMs'
  )
  await refusedNaming(
    t,
    app,
    'POST',
    '/api/coordinator/parallel',
    { tasks: [{ agent: 'travel', method: 'searchFlights' }], concurrency: 1e308 },
    'concurrency'
  )
  await refusedNaming(
    t,
    app,
    'POST',
    '/api/agents/travel/searchFlights',
    { from: 'Cairo', to: 'Rome', date: '2030-01-01', passengers: 1e308 },
    'passengers'
  )
  await refusedNaming(
    t,
    app,
    'POST',
    '/api/agents/travel/generateItinerary',
    { destination: 'Rome', duration: 3, budget: 1e308 },
    'budget'
  )
  await refusedNaming(
    t,
    app,
    'POST',
    '/api/coordinator/workflow',
    { workflowName: 'launch-plan', input: { industry: 'travel', target: 'agencies', budgetUsd: 1e308 } },
    'budgetUsd'
  )
  t.equal(
    (await send(app, 'POST', '/api/stream/cleanup', { maxIdleSeconds: 86_400 })).statusCode,
    200,
    'a day is accepted'
  )
})

// Acceptance 3: bad input to every method — a missing field, a wrong type, an extra field, an oversized
// string — is a 400 AMK_VALIDATION naming the field, and nothing reaches the provider. Also: unknown
// agents and methods are 404s listing what exists, and direct invokes (coordinator) validate the same way.
import t from 'tap'
import type { TSchema } from 'typebox'
import { startGeminiServer } from '../fixtures/gemini-server.js'
import { buildApp, CASES, definitions, invoke, modelAnswer } from './support.js'

interface ObjectSchema {
  properties: Record<string, TSchema & { type?: string; maxLength?: number; items?: { maxLength?: number } }>
  required?: string[]
}

/** The four kinds of bad body for a method, each with the field the 400 must name. */
function badBodies (schema: ObjectSchema, valid: Record<string, unknown>) {
  const required = schema.required ?? []
  const missing = required[0]
  const { [missing]: _dropped, ...withoutRequired } = valid
  const stringField = Object.keys(schema.properties).find(
    k => schema.properties[k].type === 'string' && schema.properties[k].maxLength
  )
  const listField = Object.keys(schema.properties).find(
    k => schema.properties[k].type === 'array' && schema.properties[k].items?.maxLength
  )
  const oversized = stringField
    ? {
        body: { ...valid, [stringField]: 'x'.repeat(schema.properties[stringField].maxLength! + 1) },
        field: `body.${stringField}`
      }
    : {
        body: { ...valid, [listField!]: ['y'.repeat(schema.properties[listField!].items!.maxLength! + 1)] },
        field: `body.${listField}.0`
      }
  const typed = required.find(k => schema.properties[k].type === 'string') ?? required[0]
  return [
    { kind: 'missing field', body: withoutRequired, field: `body.${missing}`, message: 'is required' },
    {
      kind: 'wrong type',
      body: { ...valid, [typed]: schema.properties[typed].type === 'string' ? 12345 : 'not-a-list' },
      field: `body.${typed}`
    },
    { kind: 'extra field', body: { ...valid, sneaky: true }, field: 'body.sneaky', message: 'is not allowed' },
    { kind: 'oversized string', ...oversized }
  ]
}

t.test(
  'every method: missing / wrong type / extra / oversized → 400 with per-field details, zero provider calls',
  async t => {
    const gemini = await startGeminiServer(modelAnswer)
    t.teardown(() => gemini.close())
    const app = await buildApp(t, { env: { GEMINI_API_KEY: 'k', GEMINI_BASE_URL: gemini.url } })
    for (const { agent, method, input } of CASES) {
      const schema = definitions[agent].methods[method].input as unknown as ObjectSchema
      t.ok((schema.required ?? []).length > 0, `${agent}.${method} has a required field`)
      for (const bad of badBodies(schema, input)) {
        const res = await invoke(app, agent, method, bad.body)
        t.equal(res.statusCode, 400, `${agent}.${method} ${bad.kind}`)
        const body = res.json()
        t.equal(body.code, 'AMK_VALIDATION')
        const problem = body.details.find((d: { field: string }) => d.field === bad.field)
        t.ok(problem, `${agent}.${method} ${bad.kind} names ${bad.field} (got ${JSON.stringify(body.details)})`)
        if (bad.message) t.equal(problem?.message, bad.message)
      }
    }
    // A body that is not an object at all, and several problems at once (each field listed).
    const many = await invoke(app, 'travel', 'searchFlights', {
      from: 1,
      date: 'tomorrow',
      passengers: 99,
      class: 'cargo'
    })
    t.equal(many.statusCode, 400)
    t.same(
      many
        .json()
        .details.map((d: { field: string }) => d.field)
        .sort(),
      ['body.class', 'body.date', 'body.from', 'body.passengers', 'body.to']
    )
    t.equal(gemini.requests.length, 0, 'nothing reached the provider')
  }
)

t.test('cross-field rules (checkout after checkin) are a 400 from the service, before any call', async t => {
  const gemini = await startGeminiServer(modelAnswer)
  t.teardown(() => gemini.close())
  const app = await buildApp(t, { env: { GEMINI_API_KEY: 'k', GEMINI_BASE_URL: gemini.url } })
  const res = await invoke(app, 'travel', 'searchHotels', {
    destination: 'Rome',
    checkin: '2030-05-05',
    checkout: '2030-05-01'
  })
  t.equal(res.statusCode, 400)
  t.match(res.json(), {
    code: 'AMK_VALIDATION',
    details: [{ field: 'input.checkout', message: 'must be after checkin' }]
  })
  t.equal(gemini.requests.length, 0)
})

t.test('direct invoke (as the coordinator calls it) validates and applies defaults', async t => {
  const app = await buildApp(t)
  await t.rejects(
    app.agents.invoke({ agent: 'travel', method: 'searchFlights', input: { from: 'Oslo', extra: 1 }, caller: null }),
    {
      code: 'AMK_VALIDATION',
      statusCode: 400,
      details: [
        { field: 'input.to', message: 'is required' },
        { field: 'input.date', message: 'is required' },
        { field: 'input.extra', message: 'is not allowed' }
      ]
    }
  )
  const ok = await app.agents.invoke({
    agent: 'content',
    method: 'researchTopic',
    input: { topic: 'Coptic Cairo', context: { from: 'a previous step' } },
    caller: null
  })
  t.equal((ok.data as { topic: string }).topic, 'Coptic Cairo', 'context (any JSON) is accepted')
})

t.test('unknown agent or method → 404 listing the available ones', async t => {
  const app = await buildApp(t)
  const agent = await invoke(app, 'weather', 'forecast', {})
  t.equal(agent.statusCode, 404)
  t.match(agent.json(), { code: 'AMK_NOT_FOUND', details: { availableAgents: ['travel', 'content', 'innovation'] } })
  const method = await invoke(app, 'content', 'writePoem', { topic: 'x' })
  t.equal(method.statusCode, 404)
  t.same(method.json().details, { agent: 'content', availableMethods: Object.keys(definitions.content.methods) })
  const unauthenticated = await app.inject({ method: 'POST', url: '/api/agents/content/writePoem', payload: {} })
  t.equal(unauthenticated.statusCode, 401, 'the catch-all still requires credentials')
  // Names are looked up as own properties only (no prototype lookups).
  await t.rejects(app.agents.invoke({ agent: 'travel', method: 'toString', input: {}, caller: null }), {
    code: 'AMK_NOT_FOUND',
    statusCode: 404
  })
})

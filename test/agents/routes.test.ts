// The invoke routes as published: one concrete operation per method in OpenAPI (operationId
// <agent>_<method>, named input/output components, the x-cache header), per-route policy declared in
// route config (permission, agent and method rate limits), the catch-all hidden, and permissions enforced.
import t from 'tap'
import { buildApp, CASES, definitions, USER_KEY } from './support.js'

t.test('OpenAPI: 16 invoke operations with exact schemas; the catch-all is hidden', async t => {
  const app = await buildApp(t)
  const doc = (await app.inject('/openapi.json')).json()
  for (const { agent, method } of CASES) {
    const cap = (s: string) => s[0].toUpperCase() + s.slice(1)
    const operation = doc.paths[`/api/agents/${agent}/${method}`]?.post
    t.ok(operation, `${agent}.${method} is documented`)
    t.equal(operation.operationId, `${agent}_${method}`)
    t.same(operation.tags, ['agents'])
    t.equal(
      operation.requestBody.content['application/json'].schema.$ref,
      `#/components/schemas/${cap(agent)}${cap(method)}Input`
    )
    const ok = operation.responses['200']
    // The invoke envelope is a named component whose data is the method's output component.
    const envelope = ok.content['application/json'].schema.$ref.replace('#/components/schemas/', '')
    t.equal(
      doc.components.schemas[envelope].properties.data.$ref,
      `#/components/schemas/${cap(agent)}${cap(method)}Output`
    )
    t.ok(ok.headers['x-cache'], 'x-cache documented')
    t.ok(operation.responses['400'] && operation.responses['500'], 'error responses documented')
    t.ok(doc.components.schemas[`${cap(agent)}${cap(method)}Output`].properties, 'output component present')
  }
  t.notOk(doc.paths['/api/agents/{agent}/{method}'], 'the catch-all is not in the document')
  t.same(
    doc.components.schemas.TravelSearchFlightsInput.required,
    ['from', 'to', 'date'],
    'defaulted fields are optional for clients'
  )
})

t.test('per-method limits from §5 apply to the invoke routes (the 6th blog post in a minute is 429)', async t => {
  const app = await buildApp(t)
  const post = (i: number) =>
    app.inject({
      method: 'POST',
      url: '/api/agents/content/generateBlogPost',
      headers: { 'x-api-key': USER_KEY },
      payload: { topic: `Post number ${i}` }
    })
  for (let i = 1; i <= 5; i++) t.equal((await post(i)).statusCode, 200)
  const limited = await post(6)
  t.equal(limited.statusCode, 429)
  t.equal(limited.json().details.scope, 'content.generateBlogPost')
  t.same(Object.fromEntries(Object.values(definitions).map(d => [d.name, d.rateLimit])), {
    travel: 60,
    content: 30,
    innovation: 30
  })
  t.same(
    Object.fromEntries(
      Object.values(definitions).flatMap(d =>
        Object.values(d.methods).map(m => [`${d.name}.${m.name}`, [m.cacheTtl, m.rateLimit]])
      )
    ),
    {
      'travel.searchFlights': [300, 20],
      'travel.searchHotels': [3600, 20],
      'travel.generateItinerary': [1800, 10],
      'travel.getDestinationRecommendations': [86400, 60],
      'travel.getVisaRequirements': [604800, 60],
      'travel.createCompletePackage': [1800, 10],
      'content.generateBlogPost': [3600, 5],
      'content.generateSocialPosts': [1800, 10],
      'content.generateVideoScript': [3600, 5],
      'content.researchTopic': [7200, 30],
      'content.generateContentCalendar': [86400, 30],
      'innovation.generateIdeas': [7200, 10],
      'innovation.analyzeTrends': [86400, 15],
      'innovation.analyzeCompetitors': [43200, 10],
      'innovation.validateIdea': [3600, 30],
      'innovation.createBusinessModelCanvas': [7200, 30]
    },
    'cache TTLs and rate limits as in DESIGN §5'
  )
  t.same(Object.fromEntries(Object.values(definitions).map(d => [d.name, d.defaultModel])), {
    travel: 'flash',
    content: 'pro',
    innovation: 'pro'
  })
})

t.test('credentials: none → 401; a user key may execute', async t => {
  const app = await buildApp(t)
  const payload = { topic: 'Aswan sunsets' }
  t.equal((await app.inject({ method: 'POST', url: '/api/agents/content/researchTopic', payload })).statusCode, 401)
  const res = await app.inject({
    method: 'POST',
    url: '/api/agents/content/researchTopic',
    headers: { 'x-api-key': USER_KEY },
    payload
  })
  t.equal(res.statusCode, 200)
  t.match(
    res.headers['ratelimit-policy'] ?? res.headers['ratelimit-limit'] ?? '',
    /\d/,
    'rate limited (headers present)'
  )
})

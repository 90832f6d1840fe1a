// Acceptance 1 and 6: every one of the 16 methods answers 200 with schema-valid, useful output — through
// the offline provider, and through the real @google/genai SDK against a local Gemini server (the request
// carries the method's output schema as responseJsonSchema, the prompt carries the input).
import t from 'tap'
import { Value } from 'typebox/value'
import { toProviderSchema } from '../../src/llm/json.js'
import { startGeminiServer } from '../fixtures/gemini-server.js'
import { buildApp, CASES, definitions, invoke, methodOf, modelAnswer } from './support.js'

t.test('offline provider: all 16 methods answer 200, schema-valid, echoing the input, labelled offline', async t => {
  const app = await buildApp(t)
  t.equal(app.features.llmProvider, 'offline (no GEMINI_API_KEY)')
  t.equal(CASES.length, 16)
  for (const { agent, method, input, mentions } of CASES) {
    const res = await invoke(app, agent, method, input)
    t.equal(res.statusCode, 200, `${agent}.${method} status`)
    const body = res.json()
    t.match(body, { success: true, agent, method, cached: false }, `${agent}.${method} envelope`)
    t.same(Object.keys(body).sort(), ['agent', 'cached', 'data', 'durationMs', 'method', 'success', 'traceId', 'usage'])
    t.ok(Value.Check(definitions[agent].methods[method].output, body.data), `${agent}.${method} output validates`)
    for (const word of mentions) t.ok(JSON.stringify(body.data).includes(word), `${agent}.${method} mentions ${word}`)
    t.equal(body.usage.model, 'offline')
    t.equal(body.usage.costUsd, 0)
    t.ok(body.usage.inputTokens > 0 && body.usage.outputTokens > 0, 'usage is reported (≈ chars/4)')
    t.equal(res.headers['x-cache'], 'miss')
  }
  // Equal input, equal output: the offline provider is deterministic.
  const again = await invoke(app, 'travel', 'searchFlights', CASES[0].input, { 'cache-control': 'no-cache' })
  const first = await invoke(app, 'travel', 'searchFlights', CASES[0].input, { 'cache-control': 'no-cache' })
  t.same(again.json().data, first.json().data)
})

t.test('gemini via @google/genai: all 16 methods, schema sent, input in the prompt, right model per agent', async t => {
  const gemini = await startGeminiServer(modelAnswer)
  t.teardown(() => gemini.close())
  const app = await buildApp(t, { env: { GEMINI_API_KEY: 'test-gemini-key', GEMINI_BASE_URL: gemini.url } })
  t.equal(app.features.llmProvider, 'gemini (gemini-2.5-flash / gemini-2.5-pro)')

  for (const { agent, method, input, mentions } of CASES) {
    gemini.reset()
    const res = await invoke(app, agent, method, input)
    t.equal(res.statusCode, 200, `${agent}.${method} status`)
    const body = res.json()
    t.ok(Value.Check(definitions[agent].methods[method].output, body.data), `${agent}.${method} output validates`)
    for (const word of mentions) t.ok(JSON.stringify(body.data).includes(word), `${agent}.${method} mentions ${word}`)

    const expectedModel = agent === 'travel' ? 'gemini-2.5-flash' : 'gemini-2.5-pro'
    const composite = method === 'createCompletePackage'
    t.equal(gemini.requests.length, composite ? 4 : 1, `${agent}.${method} provider calls`)
    for (const request of gemini.requests) {
      t.equal(request.model, expectedModel)
      t.equal(request.headers['x-goog-api-key'], 'test-gemini-key')
      t.equal(request.body.generationConfig?.responseMimeType, 'application/json')
      const called = methodOf(request)
      t.same(
        request.body.generationConfig?.responseJsonSchema,
        toProviderSchema(called.method.output),
        'the output schema is the response schema'
      )
      t.ok(request.system.length > 20, 'a system instruction is sent')
    }
    if (composite) {
      t.same(gemini.requests.map(r => methodOf(r).method.name).sort(), [
        'generateItinerary',
        'getVisaRequirements',
        'searchFlights',
        'searchHotels'
      ])
      t.ok(
        gemini.requests.some(r => r.prompt.includes('"from": "Berlin"') && r.prompt.includes('"to": "Rome"')),
        'flight leg carries the package input'
      )
    } else {
      const prompt = gemini.requests[0].prompt
      for (const [key, value] of Object.entries(input)) {
        t.ok(
          prompt.includes(`"${key}": ${JSON.stringify(value, null, 2).replace(/\n/g, '\n  ')}`),
          `${agent}.${method} prompt carries ${key}`
        )
      }
    }
    t.equal(body.usage.model, expectedModel, 'the reply names the model')
    t.ok(body.usage.costUsd > 0, 'priced from the table')
  }
})

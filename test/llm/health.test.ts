// /api/health gains an `llm` component built from configuration and the recent error rate — never a paid
// call; GET /api names the provider in use.
import t from 'tap'
import { startGeminiServer } from '../fixtures/gemini-server.js'
import { buildApp, invoke } from '../agents/support.js'

t.test('offline: healthy and labelled, provider named in GET /api', async t => {
  const app = await buildApp(t)
  const health = (await app.inject('/api/health')).json()
  t.match(health.components.llm, {
    status: 'healthy',
    message: /offline provider/,
    details: { provider: 'offline', flash: 'offline', pro: 'offline' }
  })
  t.equal(health.components.agents.status, 'healthy')
  t.equal((await app.inject('/api')).json().features.llmProvider, 'offline (no GEMINI_API_KEY)')
  t.ok(app.notices.some(n => /offline/.test(n) && /placeholders/.test(n)), 'the startup banner says so')
})

t.test(
  'gemini: healthy without calling it; unhealthy after repeated failures (the service stays up: degraded)',
  async t => {
    const gemini = await startGeminiServer(() => ({ status: 500 }))
    t.teardown(() => gemini.close())
    const app = await buildApp(t, { env: { GEMINI_API_KEY: 'k', GEMINI_BASE_URL: gemini.url, LLM_MAX_RETRIES: '0' } })
    const before = (await app.inject('/api/health')).json()
    t.match(before.components.llm, {
      status: 'healthy',
      details: { provider: 'gemini', flash: 'gemini-2.5-flash', pro: 'gemini-2.5-pro', recentCalls: 0 }
    })
    t.equal(gemini.requests.length, 0, 'the health check made no model request')

    for (let i = 0; i < 5; i++) {
      t.equal(
        (
          await invoke(app, 'travel', 'searchFlights', {
            from: 'Oslo',
            to: 'Rome',
            date: '2030-01-01',
            passengers: i + 1
          })
        ).statusCode,
        502
      )
    }
    const res = await app.inject('/api/health')
    const after = res.json()
    t.match(after.components.llm, {
      status: 'unhealthy',
      message: '5 of the last 5 LLM calls failed',
      details: { recentErrors: 5 }
    })
    t.equal(res.statusCode, 200, 'the llm component is not critical: overall degraded')
    t.equal(after.status, 'degraded')
  }
)

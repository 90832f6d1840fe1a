// The service routes (src/routes/service.ts): GET /api describes the service and links the docs; GET /api/status
// stays cheap and reports readiness and memory.
import t from 'tap'
import { build } from '../support.js'

t.test('GET /api describes the service and links the docs', async t => {
  const app = await build(t)
  const res = await app.inject('/api')
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.equal(body.service, 'amrikyy-agent-api')
  t.equal(body.environment, 'test')
  t.equal(body.features.database, 'pglite')
  t.equal(body.features.redis, false)
  t.same(body.links, { docs: '/docs', openapi: '/openapi.json', health: '/api/health', metrics: '/api/metrics' })
})

t.test('GET /api/status is cheap and reports readiness and memory', async t => {
  const app = await build(t)
  const res = await app.inject('/api/status')
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.equal(body.ready, true)
  t.ok(body.memory.rssMb > 0)
  t.ok(Date.parse(body.timestamp))
})

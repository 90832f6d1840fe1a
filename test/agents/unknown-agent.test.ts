// An unknown agent name gets the same 404 on every route that takes one: the invoke routes, agent
// management and stream statistics all answer AMK_NOT_FOUND with `details.availableAgents`.
import t from 'tap'
import { buildApp, auth } from './support.js'

t.test('an unknown agent is the same 404 on the invoke, management and stream-stats routes', async t => {
  const app = await buildApp(t)
  const requests = [
    { method: 'POST' as const, url: '/api/agents/nope/searchFlights', payload: {} },
    { method: 'GET' as const, url: '/api/agents/nope/status' },
    { method: 'GET' as const, url: '/api/stream/stats/nope' }
  ]
  const bodies = []
  for (const request of requests) {
    const res = await app.inject({ ...request, headers: auth() })
    t.equal(res.statusCode, 404, `${request.method} ${request.url}`)
    const { requestId: _id, ...body } = res.json()
    bodies.push(body)
  }
  t.same(bodies[0], {
    statusCode: 404,
    code: 'AMK_NOT_FOUND',
    error: 'Not Found',
    message: "Unknown agent 'nope'",
    details: { availableAgents: ['travel', 'content', 'innovation'] }
  })
  t.same(bodies[1], bodies[0], 'agent management answers like the invoke route')
  t.same(bodies[2], bodies[0], 'stream statistics answer like the invoke route')
})

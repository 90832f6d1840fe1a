// Cache-Control on the coordinator follows the invoke routes' rule (src/agents/request-rules.ts):
// `no-cache` and `no-store` both make every step bypass the agents' response cache.
import t from 'tap'
import { cacheBypass } from '../../src/agents/request-rules.js'
import { build } from '../support.js'
import { as, COORDINATOR_ENV, post } from './support.js'

t.test('cacheBypass: no-cache and no-store bypass, anything else does not', async t => {
  t.equal(cacheBypass({ 'cache-control': 'no-cache' }), true)
  t.equal(cacheBypass({ 'cache-control': 'no-store' }), true)
  t.equal(cacheBypass({ 'cache-control': 'max-age=0, No-Store' }), true)
  t.equal(cacheBypass({ 'cache-control': ['private', 'no-store'] }), true)
  t.equal(cacheBypass({ 'cache-control': 'max-age=60' }), false)
  t.equal(cacheBypass({}), false)
})

t.test('parallel steps honour Cache-Control: no-store and no-cache like the invoke routes', async t => {
  const app = await build(t, { env: COORDINATOR_ENV })
  const body = {
    tasks: [
      {
        id: 'flights',
        agent: 'travel',
        method: 'searchFlights',
        input: { from: 'Oslo', to: 'Rome', date: '2030-02-02' }
      }
    ]
  }
  const cachedOf = async (headers: Record<string, string>) => {
    const res = await post(app, 'parallel', body, headers)
    t.equal(res.statusCode, 200)
    return res.json().steps[0].cached
  }
  t.equal(await cachedOf(as('alice')), false, 'the first run fills the cache')
  t.equal(await cachedOf(as('alice')), true, 'a plain repeat is served from the cache')
  t.equal(await cachedOf(as('alice', { 'cache-control': 'no-store' })), false, 'no-store bypasses it')
  t.equal(await cachedOf(as('alice', { 'cache-control': 'no-cache' })), false, 'no-cache bypasses it')

  const invoked = await app.inject({
    method: 'POST',
    url: '/api/agents/travel/searchFlights',
    headers: as('alice', { 'cache-control': 'no-store' }),
    payload: body.tasks[0].input
  })
  t.equal(invoked.json().cached, false, 'the invoke route applies the same rule')
})

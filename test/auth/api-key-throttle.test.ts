// Failed API-key lookups are throttled per client IP (API_KEY_FAILURE_LIMIT): past the limit an unknown
// key from that IP gets 429 with Retry-After and costs no database lookup; keys that work are unaffected,
// the count is shared by replicas through Redis, and lookups that fail because the database is down
// count nothing.
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import type { Database } from '../../src/store/database.js'
import { needs, pglite, REDIS_URL, redisPrefix } from '../support.js'
import { adminToken, apiKeyWithRole, backends, buildOn } from './support.js'

const me = (app: FastifyInstance, key: string, remoteAddress: string) =>
  app.inject({ url: '/api/auth/me', headers: { 'x-api-key': key }, remoteAddress })
const bogus = (i: number) => `amk_unknown_key_${String(i).padStart(24, '0')}`

/** The file's PGlite, counting API-key lookups and able to refuse every query (an outage). */
async function watchedDb () {
  const real = await pglite()
  const state = { lookups: 0, down: false }
  const db = new Proxy(real, {
    get (target, prop) {
      if (prop === 'query') {
        return (sql: string, params?: unknown[]) => {
          if (state.down) {
            return Promise.reject(
              Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })
            )
          }
          if (sql.includes('FROM api_keys WHERE key_hash')) state.lookups++
          return target.query(sql, params)
        }
      }
      const value: unknown = Reflect.get(target, prop)
      return typeof value === 'function' ? value.bind(target) : value
    }
  }) satisfies Database
  return { db, state }
}

t.test('failed key lookups: 429 past the limit per IP, without a lookup; working keys are unaffected', async t => {
  const { db, state } = await watchedDb()
  const app = await buildOn(t, backends[0], { db, env: { API_KEY_FAILURE_LIMIT: '3' } })
  const admin = await adminToken(app)
  const good = await apiKeyWithRole(app, admin, 'user')
  t.equal((await me(app, good.key, '10.4.0.9')).statusCode, 200)

  state.lookups = 0
  for (let i = 0; i < 3; i++) t.equal((await me(app, bogus(i), '10.4.0.1')).statusCode, 401)
  const limited = await me(app, bogus(3), '10.4.0.1')
  t.equal(limited.statusCode, 429)
  t.match(limited.json(), {
    statusCode: 429,
    code: 'AMK_RATE_LIMITED',
    error: 'Too Many Requests',
    requestId: String,
    details: { scope: 'api-key' }
  })
  const retryAfter = Number(limited.headers['retry-after'])
  t.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`)
  for (let i = 4; i < 30; i++) await me(app, bogus(i), '10.4.0.1')
  t.equal(state.lookups, 3, 'only the allowed failures reached the database')

  t.equal((await me(app, good.key, '10.4.0.2')).statusCode, 200, 'a valid key from another IP works')
  t.equal(
    (await me(app, good.key, '10.4.0.1')).statusCode,
    200,
    'a key this replica knows works even from the throttled IP'
  )
  const fresh = await apiKeyWithRole(app, admin, 'user')
  t.equal(
    (await me(app, fresh.key, '10.4.0.1')).statusCode,
    429,
    'a key never seen here is not looked up for a throttled IP'
  )
  t.equal((await me(app, fresh.key, '10.4.0.3')).statusCode, 200)

  const another = await apiKeyWithRole(app, admin, 'user')
  t.equal((await me(app, another.key, '10.4.0.5')).statusCode, 200, 'a successful lookup is taken back…')
  for (let i = 0; i < 3; i++) { t.equal((await me(app, bogus(100 + i), '10.4.0.5')).statusCode, 401, '…so the full allowance remains') }
  t.equal((await me(app, bogus(103), '10.4.0.5')).statusCode, 429)

  state.down = true
  for (let i = 0; i < 5; i++) { t.equal((await me(app, bogus(200 + i), '10.4.0.6')).statusCode, 503, 'a database outage is a 503') }
  state.down = false
  for (let i = 0; i < 3; i++) {
    t.equal(
      (await me(app, bogus(210 + i), '10.4.0.6')).statusCode,
      401,
      'lookups that failed in the outage counted nothing'
    )
  }
})

t.test('the count is shared by replicas through Redis', { skip: needs('redis') }, async t => {
  const env = { REDIS_URL, REDIS_KEY_PREFIX: redisPrefix(), API_KEY_FAILURE_LIMIT: '2' }
  const a = await buildOn(t, backends[0], { env })
  const b = await buildOn(t, backends[0], { env })
  for (let i = 0; i < 2; i++) t.equal((await me(a, bogus(i), '10.5.0.1')).statusCode, 401)
  t.equal((await me(b, bogus(2), '10.5.0.1')).statusCode, 429, 'replica B refuses after failures on A')
  t.equal((await me(b, bogus(3), '10.5.0.2')).statusCode, 401, 'other IPs are unaffected')
})

t.test('a burst of requests with one new valid key makes one lookup and is not throttled', async t => {
  const { db, state } = await watchedDb()
  const app = await buildOn(t, backends[0], { db, env: { API_KEY_FAILURE_LIMIT: '3' } })
  const fresh = await apiKeyWithRole(app, await adminToken(app), 'user')
  state.lookups = 0
  const statuses = await Promise.all(
    Array.from({ length: 30 }, () => me(app, fresh.key, '10.4.1.1').then(res => res.statusCode))
  )
  t.same(new Set(statuses), new Set([200]), '30 concurrent first requests from one IP all pass')
  t.equal(state.lookups, 1, 'and share one lookup')
})

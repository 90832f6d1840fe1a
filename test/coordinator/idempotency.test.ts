// Idempotency-Key on the run routes: 20 concurrent POSTs with one key make exactly one run and one set
// of provider calls — on PGlite and on PostgreSQL (two replicas sharing the database), with and without
// Redis. A different body with the key → 422; keys are per caller; a repeat after the run returns it.
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { build, needs, postgresDatabase, REDIS_URL, redisPrefix } from '../support.js'
import { as, COORDINATOR_ENV, ledgerRows, parseSse, post, runRows } from './support.js'

const BODY = {
  steps: [
    { id: 'trip', agent: 'travel', method: 'generateItinerary', input: { destination: 'Seville', duration: 2 } },
    { agent: 'content', method: 'generateSocialPosts', input: { topic: 'Two days in Seville', count: 2 } }
  ]
}

const redisEnv = () => ({ REDIS_URL, REDIS_KEY_PREFIX: redisPrefix() })

const backends: Array<{ name: string; skip: false | string; replicas: (t: Test) => Promise<FastifyInstance[]> }> = [
  { name: 'PGlite, in-memory stores', skip: false, replicas: async t => [await build(t, { env: COORDINATOR_ENV })] },
  {
    name: 'PGlite + Redis',
    skip: needs('redis'),
    replicas: async t => [await build(t, { env: { ...COORDINATOR_ENV, ...redisEnv() } })]
  },
  {
    name: 'PostgreSQL, two replicas',
    skip: needs('postgres'),
    replicas: async t => {
      const env = { ...COORDINATOR_ENV, DATABASE_URL: await postgresDatabase() }
      return [await build(t, { db: null, env }), await build(t, { db: null, env })]
    }
  },
  {
    name: 'PostgreSQL + Redis, two replicas',
    skip: needs('postgres') || needs('redis'),
    replicas: async t => {
      const env = { ...COORDINATOR_ENV, ...redisEnv(), DATABASE_URL: await postgresDatabase() }
      return [await build(t, { db: null, env }), await build(t, { db: null, env })]
    }
  }
]

for (const backend of backends) {
  t.test(
    `${backend.name}: 20 concurrent POSTs with one Idempotency-Key → one run, one set of provider calls`,
    { skip: backend.skip },
    async t => {
      const apps = await backend.replicas(t)
      const [first] = apps
      const key = `order-${backend.name.length}-${Date.now()}`
      const headers = as('alice', { 'idempotency-key': key, 'cache-control': 'no-cache' })
      const replies = await Promise.all(
        Array.from({ length: 20 }, (_, i) => {
          const app = apps[i % apps.length]
          return i === 7
            ? post(app, 'sequential', BODY, { ...headers, accept: 'text/event-stream' })
            : post(app, 'sequential', BODY, headers)
        })
      )
      t.same(
        replies.map(r => r.statusCode),
        Array(20).fill(200)
      )
      const runIds = new Set(replies.map(r => r.headers['x-run-id']))
      t.equal(runIds.size, 1, 'every reply names the same run')
      const [runId] = runIds
      t.equal(replies.filter(r => r.headers['idempotent-replayed'] === 'true').length, 19, 'all but one joined the run')
      const json = replies.filter((_, i) => i !== 7).map(r => r.json())
      t.ok(json.every(body => body.runId === runId && body.status === 'completed' && body.steps.length === 2))
      const streamed = parseSse(replies[7].body)
      t.equal(streamed[streamed.length - 1].event, 'complete')
      t.equal(streamed[streamed.length - 1].data.runId, runId)

      t.equal(await runRows(first), 1, 'one run stored')
      t.equal(await ledgerRows(first, runId as string), 2, 'one provider call per step')
      t.equal(await ledgerRows(first), 2, 'and no others')
      const [stored] = await first.db.query<{ ttl: number }>(
        'SELECT extract(epoch FROM expires_at - created_at)::int AS ttl FROM idempotency_keys WHERE key = $1',
        [key]
      )
      t.equal(stored.ttl, 86_400, 'the key lives 24 h')

      const again = await post(apps[apps.length - 1], 'sequential', BODY, headers)
      t.equal(again.headers['x-run-id'], runId, 'a later repeat returns the stored run')
      t.equal(again.headers['idempotent-replayed'], 'true')
      t.same(again.json().steps, json[0].steps)
      t.equal(await ledgerRows(first), 2)

      const reordered = await post(
        first,
        'sequential',
        { steps: BODY.steps.map(s => Object.fromEntries(Object.entries(s).reverse())) },
        headers
      )
      t.equal(reordered.headers['x-run-id'], runId, 'the same body with its keys in another order is the same request')

      const different = await post(first, 'sequential', { ...BODY, onError: 'continue' }, headers)
      t.equal(different.statusCode, 422)
      t.equal(different.json().code, 'AMK_UNPROCESSABLE')
      const otherRoute = await post(first, 'parallel', { tasks: BODY.steps }, headers)
      t.equal(otherRoute.statusCode, 422, 'the key is bound to the route too')

      const bob = await post(first, 'sequential', BODY, as('bob', { 'idempotency-key': key }))
      t.equal(bob.statusCode, 200)
      t.not(bob.headers['x-run-id'], runId, 'keys are per caller')
      t.equal(await runRows(first), 2)
    }
  )
}

// A stream ticket stands for the credential it was issued to: once that API key is revoked, that token has
// expired or that account is deleted, the ticket can neither start a stream (no paid generation) nor
// resume one — 401 in the error shape. A ticket whose credential is still good works as before.
import t, { type Test } from 'tap'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { setTimeout as sleep } from 'node:timers/promises'
import { adminToken, apiKeyWithRole, backends, bearer, buildOn, claims, mintHs256, userWithRole } from './support.js'

const BLOG = 'topic=Budget+travel+in+Vietnam&keywords=hanoi&length=600'
const ENV = { RATE_LIMIT_EXEMPT_ROLES: 'premium,admin,internal' }

async function ticketFor (app: FastifyInstance, headers: Record<string, string>): Promise<string> {
  const res = await app.inject({ method: 'POST', url: '/api/stream/tickets', headers })
  if (res.statusCode !== 201) throw new Error(`ticket: ${res.body}`)
  return res.json().ticket
}

/** Generations started so far (stream_sessions_total over every status). */
async function streamsStarted (app: FastifyInstance): Promise<number> {
  const metric = app.meters.registry.getSingleMetric(app.meters.prefix + 'stream_sessions_total')
  return metric ? (await metric.get()).values.reduce((sum, v) => sum + v.value, 0) : 0
}

const start = (app: FastifyInstance, ticket: string) => app.inject({ url: `/api/stream/blog?${BLOG}&ticket=${ticket}` })

function refused (t: Test, res: LightMyRequestResponse, message: RegExp, what: string) {
  t.equal(res.statusCode, 401, what)
  t.match(res.json(), { statusCode: 401, code: 'AMK_UNAUTHORIZED', error: 'Unauthorized', message, requestId: String })
}

t.test('a revoked key\'s ticket neither starts nor resumes a stream', async t => {
  const app = await buildOn(t, backends[0], { env: ENV })
  const admin = await adminToken(app)
  const key = await apiKeyWithRole(app, admin, 'premium')
  const [unused, used] = [
    await ticketFor(app, { 'x-api-key': key.key }),
    await ticketFor(app, { 'x-api-key': key.key })
  ]
  const first = await start(app, used)
  t.equal(first.statusCode, 200, 'while the key is valid its ticket starts a stream')
  const streamId = /"streamId":"(st_[0-9a-f]+)"/.exec(first.body)?.[1]
  t.ok(streamId)
  t.equal(
    (await app.inject({ url: `/api/stream/${streamId}/events?ticket=${used}&lastEventId=${streamId}-2` })).statusCode,
    200,
    'and resumes it'
  )

  t.equal(
    (await app.inject({ method: 'DELETE', url: `/api/auth/keys/${key.id}`, headers: bearer(admin) })).statusCode,
    200
  )
  const generations = await streamsStarted(app)
  t.equal(generations, 1)
  refused(
    t,
    await start(app, unused),
    /API key this ticket was issued to was revoked/,
    'an unused ticket of the revoked key cannot start a stream'
  )
  t.equal(await streamsStarted(app), generations, 'no generation was started')
  refused(
    t,
    await app.inject({ url: `/api/stream/${streamId}/events?ticket=${used}&lastEventId=${streamId}-2` }),
    /revoked/,
    'nor resume its stream'
  )
  refused(
    t,
    await app.inject({ url: `/api/stream/blog?${BLOG}&ticket=${used}`, headers: { 'last-event-id': `${streamId}-2` } }),
    /revoked/,
    'nor resume it by a browser reconnect'
  )
})

t.test('an expired token\'s or a deleted user\'s ticket is refused too', async t => {
  const app = await buildOn(t, backends[0], { env: ENV })
  const admin = await adminToken(app)
  const user = await userWithRole(app, admin, 'premium')

  const exp = Math.floor(Date.now() / 1000) + 2
  const shortLived = mintHs256(claims({ sub: user.id, email: user.email, role: 'premium', exp }))
  const expiring = await ticketFor(app, bearer(shortLived))
  await sleep(exp * 1000 - Date.now() + 100)
  refused(t, await start(app, expiring), /has expired/, 'the token expired after the ticket was issued')

  const ticket = await ticketFor(app, bearer(user.token))
  await app.db.query('DELETE FROM users WHERE id = $1', [user.id])
  refused(
    t,
    await start(app, ticket),
    /account this ticket was issued to/,
    'the account was deleted after the ticket was issued'
  )
})

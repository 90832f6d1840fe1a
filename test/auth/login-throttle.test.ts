// The login throttle: failed logins per (email, IP) first, per email alone at a much higher threshold, per
// IP over all emails — in memory, in Redis (shared by replicas), and in memory again while Redis is down.
// Refused attempts count nothing, and a database outage counts against nobody.
import t from 'tap'
import { Redis } from 'ioredis'
import { createHash } from 'node:crypto'
import type { Database } from '../../src/store/database.js'
import { freePort, needs, pglite, REDIS_URL, redisPrefix } from '../support.js'
import { ADMIN, backends, buildOn, login } from './support.js'

const throttleCases = [
  { name: 'in memory', skip: false as false | string, env: async (): Promise<Record<string, string>> => ({}) },
  { name: 'in Redis', skip: needs('redis'), env: async () => ({ REDIS_URL, REDIS_KEY_PREFIX: redisPrefix() }) },
  {
    name: 'with Redis down (memory fallback)',
    skip: false as false | string,
    env: async () => ({ REDIS_URL: `redis://127.0.0.1:${await freePort()}`, REDIS_KEY_PREFIX: redisPrefix() })
  }
]
const LIMITS = { LOGIN_RATE_LIMIT: '3', LOGIN_EMAIL_RATE_LIMIT: '9' }

for (const c of throttleCases) {
  t.test(
    `login throttle ${c.name}: per (email, IP), then per email at a higher threshold`,
    { skip: c.skip },
    async t => {
      const env: Record<string, string> = { ...(await c.env()), ...LIMITS }
      const app = await buildOn(t, backends[0], { env })
      for (let i = 0; i < 8; i++) {
        t.equal(
          (await login(app, ADMIN.email, ADMIN.password, '10.0.0.1')).statusCode,
          200,
          'successful logins use none of the allowance'
        )
      }
      for (let i = 0; i < 3; i++) t.equal((await login(app, ADMIN.email, 'wrong-password', '10.0.0.1')).statusCode, 401)
      const blocked = await login(app, ADMIN.email, ADMIN.password, '10.0.0.1')
      t.equal(blocked.statusCode, 429, 'that email from that IP is locked, even with the right password')
      t.match(blocked.json(), { code: 'AMK_RATE_LIMITED', details: { scope: 'login', limit: 'email-ip' } })
      const retryAfter = Number(blocked.headers['retry-after'])
      t.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`)
      for (let i = 0; i < 30; i++) await login(app, ADMIN.email, 'hammering', '10.0.0.1')
      t.equal(
        (await login(app, ADMIN.email, ADMIN.password, '10.0.0.2')).statusCode,
        200,
        'the stranger at 10.0.0.1 cannot lock the admin out from another IP (refused attempts count nothing)'
      )
      t.equal(
        (await login(app, 'other@example.com', 'wrong', '10.0.0.1')).statusCode,
        401,
        'other emails from that IP are still checked'
      )

      for (const ip of ['10.0.0.2', '10.0.0.3']) {
        for (let i = 0; i < 3; i++) t.equal((await login(app, ADMIN.email, 'wrong-password', ip)).statusCode, 401)
      }
      const everywhere = await login(app, ADMIN.email, ADMIN.password, '10.0.0.4')
      t.equal(
        everywhere.statusCode,
        429,
        'LOGIN_EMAIL_RATE_LIMIT failures from all IPs together lock the email everywhere'
      )
      t.match(everywhere.json().details, { scope: 'login', limit: 'email' })

      if (env.REDIS_URL === REDIS_URL) {
        const replica = await buildOn(t, backends[0], { env })
        t.equal(
          (await login(replica, ADMIN.email, ADMIN.password, '10.0.0.5')).statusCode,
          429,
          'another replica sees the same counts'
        )
        const redis = new Redis(REDIS_URL)
        t.teardown(() => redis.quit())
        const keys = await redis.keys(`${env.REDIS_KEY_PREFIX}login:*`)
        const admin = createHash('sha256').update(ADMIN.email).digest('hex').slice(0, 32)
        const counts = Object.fromEntries(
          await Promise.all(
            keys.map(async k => [k.slice(env.REDIS_KEY_PREFIX.length).replace(admin, 'H'), Number(await redis.get(k))])
          )
        )
        t.equal(
          counts['login:email-ip:H:10.0.0.1'],
          3,
          'three failures; the successes were taken back and refused attempts never counted'
        )
        t.equal(counts['login:email:H'], 9)
        t.equal(counts['login:ip:10.0.0.1'], 4)
        t.notOk(
          keys.some(k => k.includes('example.com')),
          'emails are hashed in keys'
        )
        for (const key of keys) t.ok((await redis.pttl(key)) > 0, 'every window key expires')
        await redis.del(...keys)
        t.equal(
          (await login(app, ADMIN.email, ADMIN.password, '10.0.0.1')).statusCode,
          200,
          'the shared state is Redis'
        )
      }
    }
  )
}

t.test('one IP spraying many emails is blocked by LOGIN_IP_RATE_LIMIT', async t => {
  const app = await buildOn(t, backends[0], { env: { LOGIN_IP_RATE_LIMIT: '3' } })
  for (let i = 0; i < 3; i++) t.equal((await login(app, `u${i}@example.com`, 'wrong', '10.1.0.1')).statusCode, 401)
  const blocked = await login(app, ADMIN.email, ADMIN.password, '10.1.0.1')
  t.equal(blocked.statusCode, 429)
  t.match(blocked.json().details, { limit: 'ip' })
  t.equal(
    (await login(app, ADMIN.email, ADMIN.password, '10.1.0.2')).statusCode,
    200,
    'the admin from elsewhere is fine'
  )
})

t.test('a burst of parallel guesses cannot pass the limit', async t => {
  const app = await buildOn(t, backends[0])
  const results = await Promise.all(
    Array.from({ length: 20 }, () => login(app, ADMIN.email, 'wrong-password', '10.2.0.1'))
  )
  const statuses = results.map(r => r.statusCode).sort()
  t.equal(statuses.filter(s => s === 401).length, 5, 'exactly LOGIN_RATE_LIMIT passwords were checked')
  t.equal(statuses.filter(s => s === 429).length, 15)
})

t.test('logins that fail because the database is down count against nobody', async t => {
  const real = await pglite()
  let down = false
  const refused = () =>
    Promise.reject(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }))
  const db = new Proxy(real, {
    get (target, prop) {
      if (prop === 'query' && down) return refused
      const value: unknown = Reflect.get(target, prop)
      return typeof value === 'function' ? value.bind(target) : value
    }
  }) satisfies Database
  const app = await buildOn(t, backends[0], { db, env: { LOGIN_RATE_LIMIT: '2', LOGIN_IP_RATE_LIMIT: '2' } })
  down = true
  for (let i = 0; i < 6; i++) {
    const res = await login(app, i % 2 ? ADMIN.email : `user${i}@example.com`, 'whatever-password', '10.3.0.1')
    t.equal(res.statusCode, 503, 'the outage is a 503, not a failed login')
    t.ok(Number(res.headers['retry-after']) >= 1, 'with Retry-After')
    t.match(res.json(), { statusCode: 503, code: /^AMK_/, requestId: String })
  }
  down = false
  t.equal(
    (await login(app, ADMIN.email, ADMIN.password, '10.3.0.1')).statusCode,
    200,
    'after the outage nobody at that IP is locked out'
  )
  for (let i = 0; i < 2; i++) t.equal((await login(app, ADMIN.email, 'wrong-password', '10.3.0.1')).statusCode, 401)
  t.equal((await login(app, ADMIN.email, ADMIN.password, '10.3.0.1')).statusCode, 429, 'real failures still count')
})

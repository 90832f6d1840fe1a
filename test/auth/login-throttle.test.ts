// The login throttle: failed logins per email and per client IP, in memory, in Redis, and in memory
// again while Redis is down.
import t from 'tap'
import { Redis } from 'ioredis'
import { freePort, needs, REDIS_URL, redisPrefix } from '../helper.js'
import { ADMIN, backends, buildOn, login } from './helpers.js'

const throttleCases = [
  { name: 'in memory', skip: false as false | string, env: async (): Promise<Record<string, string>> => ({}) },
  { name: 'in Redis', skip: needs('redis'), env: async () => ({ REDIS_URL, REDIS_KEY_PREFIX: redisPrefix() }) },
  { name: 'with Redis down (memory fallback)', skip: false as false | string, env: async () => ({ REDIS_URL: `redis://127.0.0.1:${await freePort()}`, REDIS_KEY_PREFIX: redisPrefix() }) }
]

for (const c of throttleCases) {
  t.test(`login throttle ${c.name}: 5 failures per email, then 429 with Retry-After`, { skip: c.skip }, async t => {
    const env = await c.env()
    const app = await buildOn(t, backends[0], { env })
    for (let i = 0; i < 8; i++) {
      t.equal((await login(app, ADMIN.email, ADMIN.password, '10.0.0.1')).statusCode, 200, 'successful logins use none of the allowance')
    }
    for (let i = 0; i < 5; i++) {
      t.equal((await login(app, ADMIN.email, 'wrong-password', '10.0.0.1')).statusCode, 401)
    }
    const blocked = await login(app, ADMIN.email, ADMIN.password, '10.0.0.2')
    t.equal(blocked.statusCode, 429, 'even the right password is refused for that email, from another IP')
    t.equal(blocked.json().code, 'AMK_RATE_LIMITED')
    t.match(blocked.json().details, { scope: 'login' })
    const retryAfter = Number(blocked.headers['retry-after'])
    t.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`)
    t.equal((await login(app, 'other@example.com', 'wrong', '10.0.0.1')).statusCode, 429, 'the IP is blocked for other emails too')
    t.equal((await login(app, 'other@example.com', 'wrong', '10.0.0.3')).statusCode, 401, 'another email from another IP is not blocked')

    if (env.REDIS_URL === REDIS_URL) {
      const redis = new Redis(REDIS_URL)
      t.teardown(() => redis.quit())
      const keys = await redis.keys(`${env.REDIS_KEY_PREFIX}login:*`)
      t.equal(keys.length, 5, 'one key per email and per IP seen')
      const counts = Object.fromEntries(await Promise.all(keys.map(async k => [k.slice(String(env.REDIS_KEY_PREFIX).length), Number(await redis.get(k))])))
      t.equal(counts['login:ip:10.0.0.3'], 1)
      t.equal(counts['login:ip:10.0.0.1'], 6, 'five failures and one refused attempt; the eight successes were taken back')
      t.notOk(keys.some(k => k.includes('example.com')), 'emails are hashed in keys')
      for (const key of keys) t.ok(await redis.pttl(key) > 0, 'every window key expires')
      await redis.del(...keys)
      t.equal((await login(app, ADMIN.email, ADMIN.password, '10.0.0.9')).statusCode, 200, 'the shared state is Redis')
    }
  })
}

t.test('a different IP is blocked by its own failures across emails', async t => {
  const app = await buildOn(t, backends[0], { env: { LOGIN_RATE_LIMIT: '3' } })
  for (let i = 0; i < 3; i++) t.equal((await login(app, `u${i}@example.com`, 'wrong', '10.1.0.1')).statusCode, 401)
  t.equal((await login(app, ADMIN.email, ADMIN.password, '10.1.0.1')).statusCode, 429, 'LOGIN_RATE_LIMIT=3 per IP')
  t.equal((await login(app, ADMIN.email, ADMIN.password, '10.1.0.2')).statusCode, 200, 'the admin from elsewhere is fine')
})

t.test('a burst of parallel guesses cannot pass the limit', async t => {
  const app = await buildOn(t, backends[0])
  const results = await Promise.all(Array.from({ length: 20 }, () => login(app, ADMIN.email, 'wrong-password', '10.2.0.1')))
  const statuses = results.map(r => r.statusCode).sort()
  t.equal(statuses.filter(s => s === 401).length, 5, 'exactly LOGIN_RATE_LIMIT passwords were checked')
  t.equal(statuses.filter(s => s === 429).length, 15)
})

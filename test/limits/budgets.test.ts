// The framework-free budget module: counters in Redis and memory, limits per role and per key, the
// rejection (dimension, reset time), seeding from the ledger, failover, and concurrent reservations
// from two "replicas" sharing one Redis.
import t from 'tap'
import { Redis } from 'ioredis'
import { Budgets, parseBudgets, utcDay, type BudgetDeps, type DailyBudget } from '../../src/limits/budgets.js'
import { MemoryBudgetCounter, RedisBudgetCounter } from '../../src/limits/budget-counter.js'
import { RedisFailover } from '../../src/limits/redis-failover.js'
import type { Caller } from '../../src/auth/roles.js'
import { needs, redisPrefix, REDIS_URL } from '../support.js'

const user: Caller = { id: 'user-1', kind: 'user', role: 'user' }
const keyCaller: Caller = { id: 'key:k1', kind: 'api-key', role: 'user', keyId: 'k1' }

function budgets (overrides: Partial<BudgetDeps> = {}, keyBudgets: Record<string, DailyBudget> = {}): Budgets {
  return new Budgets({
    failover: new RedisFailover(null, 1000),
    redisCounter: null,
    memoryCounter: new MemoryBudgetCounter(),
    roleBudgets: { user: { tokens: 1000, usd: 0.5 } },
    keyBudget: async (id) => keyBudgets[id] ?? null,
    ledgerTotals: async () => ({ tokens: 0, usd: 0 }),
    ...overrides
  })
}

t.test('parseBudgets accepts roles with tokens and/or usd, rejects the rest', async t => {
  t.same(parseBudgets('{"user":{"tokens":10},"premium":{"usd":2.5}}'), { user: { tokens: 10 }, premium: { usd: 2.5 } })
  t.same(parseBudgets(undefined), {})
  t.throws(() => parseBudgets('{"user":{"tokens":-1}}'))
  t.throws(() => parseBudgets('{"user":{"tokens":1.5}}'))
  t.throws(() => parseBudgets('[]'))
})

t.test('limits: role budgets, overridden per dimension by the key\'s own columns', async t => {
  const b = budgets({}, { k1: { tokens: 50 } })
  t.same(await b.limitsFor(user), { tokens: 1000, usd: 0.5 })
  t.same(await b.limitsFor(keyCaller), { tokens: 50, usd: 0.5 })
  t.equal(await b.limitsFor({ id: 'p', kind: 'user', role: 'premium' }), null, 'no budget configured for the role')
})

t.test(
  'calls are admitted while under the limit, each reserving its estimate; settling uses the real usage',
  async t => {
    const b = budgets()
    const first = await b.reserve(user, { tokens: 600, costUsd: 0.01 })
    t.ok(first.ok, '0 committed < 1000')
    t.ok((await b.reserve(user, { tokens: 600, costUsd: 0.01 })).ok, '600 committed < 1000: admitted, 1200 committed')
    t.notOk((await b.reserve(user, { tokens: 1, costUsd: 0 })).ok, '1200 committed ≥ 1000')
    if (!first.ok || !first.hold) return t.fail('a hold for a caller with a budget')
    await first.hold.release({ tokens: 300, costUsd: 0.005 })
    t.ok((await b.reserve(user, { tokens: 100, costUsd: 0 })).ok, '900 committed once the first call used 300')
    await first.hold.release({ tokens: 0, costUsd: 0 })
    t.notOk((await b.reserve(user, { tokens: 1, costUsd: 0 })).ok, 'settling twice has no effect')
  }
)

t.test('a rejection names the dimension, the usage and the next UTC midnight', async t => {
  const now = Date.parse('2025-03-10T22:00:00.000Z')
  const b = budgets({ now: () => now })
  await b.reserve(user, { tokens: 100, costUsd: 0.45 })
  await b.reserve(user, { tokens: 100, costUsd: 0.05 })
  const rejected = await b.reserve(user, { tokens: 100, costUsd: 0.1 })
  t.notOk(rejected.ok)
  if (rejected.ok) return
  t.same(rejected.rejection, {
    scope: 'budget',
    dimension: 'usd',
    limit: 0.5,
    used: 0.5,
    requested: 0.1,
    resetsAt: '2025-03-11T00:00:00.000Z',
    retryAfterSeconds: 7200
  })
  t.same(utcDay(now).day, '2025-03-10')
})

t.test('a new counter is seeded from the ledger (new day, restarted Redis or process)', async t => {
  const b = budgets({
    ledgerTotals: async (callerId, since) =>
      callerId === 'user-1' && since.getUTCHours() === 0 ? { tokens: 950, usd: 0.1 } : { tokens: 0, usd: 0 }
  })
  t.ok((await b.reserve(user, { tokens: 100, costUsd: 0 })).ok, '950 in the ledger today < 1000')
  t.notOk((await b.reserve(user, { tokens: 100, costUsd: 0 })).ok, '950 + the 100 reserved ≥ 1000')
})

t.test('Redis counters: shared by two replicas, exact under concurrency', { skip: needs('redis') }, async t => {
  const prefix = redisPrefix()
  const clients = [new Redis(REDIS_URL), new Redis(REDIS_URL)]
  t.teardown(() => Promise.all(clients.map(c => c.quit())))
  await Promise.all(clients.map(c => c.ping()))
  const replicas = clients.map(redis => budgets({
    failover: new RedisFailover(redis, 1000),
    redisCounter: new RedisBudgetCounter(redis, prefix),
    roleBudgets: { user: { tokens: 1000 } }
  }))
  // 40 concurrent calls of 100 estimated tokens, half through each replica; each uses 70–100 tokens.
  const results = await Promise.all(Array.from({ length: 40 }, async (_, i) => {
    const reservation = await replicas[i % 2].reserve(user, { tokens: 100, costUsd: 0 })
    if (!reservation.ok) return 0
    const used = 70 + (i * 7) % 31
    await reservation.hold?.release({ tokens: used, costUsd: 0 })
    return used
  }))
  const admitted = results.filter(Boolean)
  const total = admitted.reduce((a, b) => a + b, 0)
  t.ok(total <= 1000 + 100, `admitted usage ${total} ≤ budget + one estimate`)
  t.ok(admitted.length >= 10, `${admitted.length} calls admitted`)
  const [tokens] = await clients[0].hmget(`${prefix}budget:user-1:${utcDay(Date.now()).day}`, 'tokens')
  t.equal(Number(tokens), total, 'the shared counter equals the settled usage')
  t.ok(
    Number(await clients[0].ttl(`${prefix}budget:user-1:${utcDay(Date.now()).day}`)) > 3600,
    'the counter expires after the day'
  )
})

t.test('Redis down: budgets fall back to this process\'s memory', { skip: needs('redis') }, async t => {
  const redis = new Redis('redis://127.0.0.1:1', {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null
  })
  t.teardown(() => redis.disconnect())
  const switches: string[] = []
  const b = budgets({
    failover: new RedisFailover(redis, 1000, { onSwitch: to => switches.push(to) }),
    redisCounter: new RedisBudgetCounter(redis, redisPrefix())
  })
  t.ok((await b.reserve(user, { tokens: 1000, costUsd: 0 })).ok)
  t.notOk((await b.reserve(user, { tokens: 200, costUsd: 0 })).ok, 'still enforced, in memory')
  t.same(switches, ['memory'])
})

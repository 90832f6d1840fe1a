// The rate-limit store (src/limits/limiter-store.ts): fixed windows in memory (counted, reset when the
// window ends, bounded by dropping the least recently counted) and in Redis (the first request of a window
// sets its expiry, later ones report the time left), behind the plugin's store interface.
import t from 'tap'
import { Redis } from 'ioredis'
import { FailoverLimiterStore, LocalWindows, RedisWindows, type WindowCount } from '../../src/limits/limiter-store.js'
import { RedisBreaker } from '../../src/limits/redis-failover.js'
import { needs, REDIS_URL, redisPrefix } from '../support.js'

t.test('memory windows count, reset and stay bounded', async t => {
  const windows = new LocalWindows(3)
  t.same(windows.incr('a', 1000, 10_000), { current: 1, ttl: 1000 })
  t.same(windows.incr('a', 1000, 10_400), { current: 2, ttl: 600 })
  t.same(windows.incr('a', 1000, 11_000), { current: 1, ttl: 1000 }, 'a new window once the last one ended')
  windows.incr('b', 1000, 11_000)
  windows.incr('c', 1000, 11_000)
  windows.incr('a', 1000, 11_100) // a is now the most recently counted
  windows.incr('d', 1000, 11_100)
  t.equal(windows.size, 3, 'never more than its capacity')
  t.same(windows.incr('a', 1000, 11_200), { current: 3, ttl: 800 }, 'the recently counted window is kept')
  t.same(windows.incr('b', 1000, 11_200), { current: 1, ttl: 1000 }, 'the least recently counted was dropped')
})

t.test('Redis windows: the first request starts the expiry', { skip: needs('redis') }, async t => {
  const redis = new Redis(REDIS_URL)
  t.teardown(() => redis.disconnect())
  const prefix = redisPrefix()
  const windows = new RedisWindows(redis, prefix)
  t.same(await windows.incr('k', 5000), { current: 1, ttl: 5000 })
  const second = await windows.incr('k', 5000)
  t.equal(second.current, 2)
  t.ok(second.ttl > 0 && second.ttl <= 5000, `the time left in the window (${second.ttl} ms)`)
  const pttl = await redis.pttl(`${prefix}k`)
  t.ok(pttl > 0 && pttl <= 5000, 'the key expires with its window')
  await redis.del(`${prefix}k`)
})

t.test('the store counts in memory while Redis is not configured; child() shares its counters', async t => {
  const breaker = new RedisBreaker(null, 1000)
  t.teardown(() => breaker.close())
  const Store = FailoverLimiterStore.bound(breaker, 'rl:')
  const store = new Store({})
  if (!(store instanceof FailoverLimiterStore)) throw new Error('bound() builds a FailoverLimiterStore')
  const incr = (key: string) => new Promise<WindowCount | undefined>((resolve, reject) => {
    store.incr(key, (error, result) => { error ? reject(error) : resolve(result) }, 60_000)
  })
  t.equal((await incr('global:ip:1'))?.current, 1)
  t.equal((await incr('global:ip:1'))?.current, 2)
  t.equal(store.child(), store, 'one store serves every route')
})

// The rate-limit counters (src/limits/limiter-store.ts): fixed windows in memory (counted, reset when the
// window ends, bounded by dropping the least recently counted) and in Redis (the first request of a window
// sets its expiry, later ones report the time left; every window of a request in one script call), and
// how a client without credentials is keyed (src/limits/policy.ts).
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { FailoverWindows, LocalWindows, RedisWindows } from '../../src/limits/limiter-store.js'
import { clientAddress } from '../../src/limits/policy.js'
import { RedisBreaker } from '../../src/limits/redis-failover.js'
import { needs, REDIS_URL, redisPrefix } from '../support.js'

/** A Redis client of the test's own and windows under a fresh prefix. */
function redisWindows (t: Test) {
  const redis = new Redis(REDIS_URL)
  t.teardown(() => redis.disconnect())
  const prefix = redisPrefix()
  return { redis, prefix, windows: new RedisWindows(redis, prefix) }
}

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
  const { redis, prefix, windows } = redisWindows(t)
  t.same(await windows.incr('k', 5000), { current: 1, ttl: 5000 })
  const second = await windows.incr('k', 5000)
  t.equal(second.current, 2)
  t.ok(second.ttl > 0 && second.ttl <= 5000, `the time left in the window (${second.ttl} ms)`)
  const pttl = await redis.pttl(`${prefix}k`)
  t.ok(pttl > 0 && pttl <= 5000, 'the key expires with its window')
  await redis.del(`${prefix}k`)
})

t.test('Redis windows: every window of a request counted in one call, each with its own expiry', {
  skip: needs('redis')
}, async t => {
  const { redis, prefix, windows } = redisWindows(t)
  const requests = [
    { key: 'global:c:1', timeWindow: 60_000 },
    { key: 'travel:c:1', timeWindow: 5000 },
    { key: 'travel.searchFlights:c:1', timeWindow: 2000 }
  ]
  t.same(await windows.incrAll(requests), [
    { current: 1, ttl: 60_000 },
    { current: 1, ttl: 5000 },
    { current: 1, ttl: 2000 }
  ])
  await windows.incr('travel:c:1', 5000) // counted on its own too: the same counter
  const again = await windows.incrAll(requests)
  t.same(again.map(c => c.current), [2, 3, 2])
  again.forEach((count, i) => {
    t.ok(count.ttl > 0 && count.ttl <= requests[i].timeWindow, `${requests[i].key}: ${count.ttl} ms left`)
  })
  const pttls = await Promise.all(requests.map(r => redis.pttl(prefix + r.key)))
  t.ok(pttls.every((pttl, i) => pttl > 0 && pttl <= requests[i].timeWindow), 'each key expires with its window')
  // A counter found without an expiry (written by something else) is given one rather than never resetting.
  await redis.set(`${prefix}stale`, '7')
  const [stale] = await windows.incrAll([{ key: 'stale', timeWindow: 3000 }])
  t.same(stale, { current: 8, ttl: 3000 })
  t.ok((await redis.pttl(`${prefix}stale`)) > 0)
  await redis.del(...requests.map(r => prefix + r.key), `${prefix}stale`)
})

t.test('Redis windows: the requests of one event-loop turn are counted in one script call', {
  skip: needs('redis')
}, async t => {
  const { redis, prefix, windows } = redisWindows(t)
  await windows.incr('warm', 1000) // the script is known to the server from here on
  const sent = t.capture(redis, 'sendCommand', redis.sendCommand.bind(redis))
  // 20 requests of two windows each, the same caller's `global` key in every one of them.
  const requests = Array.from({ length: 20 }, (_, i) => [
    { key: 'global:c:1', timeWindow: 60_000 },
    { key: `agent:c:${i % 4}`, timeWindow: 5000 }
  ])
  const counts = await Promise.all(requests.map(r => windows.incrAll(r)))
  t.same(sent().map(call => call.args[0].name), ['evalsha'], 'one command for the 20 requests')
  t.same(counts.map(c => c[0].current), Array.from({ length: 20 }, (_, i) => i + 1),
    'each request counted after the ones before it, as if alone')
  t.same(counts.map(c => c[1].current), Array.from({ length: 20 }, (_, i) => Math.floor(i / 4) + 1))
  t.ok(counts.every(c => c[0].ttl > 0 && c[0].ttl <= 60_000 && c[1].ttl > 0 && c[1].ttl <= 5000), 'their windows')

  // More keys than one call takes (1024): several calls, a request never split, still one write.
  const many = Array.from({ length: 600 }, (_, i) => [
    { key: `many:a:${i}`, timeWindow: 5000 },
    { key: `many:b:${i}`, timeWindow: 5000 }
  ])
  const manyCounts = await Promise.all(many.map(r => windows.incrAll(r)))
  const calls = sent().map(call => call.args[0]) // the calls since the last look
  t.equal(calls.length, 2, '1,200 keys in two calls')
  t.ok(calls.every(call => Number(call.args[1]) <= 1024 && Number(call.args[1]) % 2 === 0), 'each ≤ 1024 keys, whole requests')
  t.ok(manyCounts.every(c => c.length === 2 && c[0].current === 1 && c[1].current === 1), 'every key counted once')

  // A server that forgot the script (restarted, flushed): the turn's requests are counted by EVAL instead.
  await redis.script('FLUSH')
  const again = await Promise.all(requests.slice(0, 3).map(r => windows.incrAll(r)))
  t.same(again.map(c => c[0].current), [21, 22, 23])

  // A failed call fails every request of its turn, each with the error.
  await redis.set(`${prefix}text`, 'not a number')
  const failed = await Promise.allSettled([
    windows.incrAll([{ key: 'text', timeWindow: 1000 }]),
    windows.incrAll([{ key: 'global:c:2', timeWindow: 1000 }])
  ])
  t.same(failed.map(r => r.status), ['rejected', 'rejected'])
  t.match((failed[1] as PromiseRejectedResult).reason, { message: /not an integer/ })
  await redis.del(`${prefix}warm`, `${prefix}text`, `${prefix}global:c:1`, `${prefix}global:c:2`,
    ...[0, 1, 2, 3].map(i => `${prefix}agent:c:${i}`), ...many.flat().map(r => prefix + r.key))
})

t.test('without Redis the windows are counted in memory, all of a request together', async t => {
  const breaker = new RedisBreaker(null, 1000)
  t.teardown(() => breaker.close())
  const windows = new FailoverWindows(breaker, 'rl:')
  const requests = [{ key: 'global:ip:1', timeWindow: 60_000 }, { key: 'demo:ip:1', timeWindow: 1000 }]
  t.same((await windows.count(requests)).map(c => c.current), [1, 1])
  t.same((await windows.count(requests)).map(c => c.current), [2, 2])
  t.same((await windows.count([requests[1]])).map(c => c.current), [3], 'one counter per key, whatever the request')
})

t.test('clients without credentials: IPv4 as is, IPv4-mapped as IPv4, IPv6 by its /64', async t => {
  // The keys @fastify/rate-limit's normalizeIP gave (checked against it when it was replaced).
  const cases: Array<[string, string]> = [
    ['192.0.2.10', '192.0.2.10'],
    ['::ffff:192.0.2.10', '192.0.2.10'],
    ['::ffff:c000:20a', '192.0.2.10'],
    ['::1', '::'],
    ['::', '::'],
    ['2001:db8::1', '2001:db8::'],
    ['2001:DB8:0:0:1::5', '2001:db8::'],
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::'],
    ['2001:db8:0:1:2:3:4:5', '2001:db8:0:1::'],
    ['1:2:3:4:5:6:7:8', '1:2:3:4::'],
    ['0:0:1:0::', '0:0:1::'],
    ['0:0:0:1::', '0:0:0:1::'],
    ['fe80::1%eth0', 'fe80::'],
    ['::1.2.3.4', '::'],
    ['2001:db8:1:2:3:4:1.2.3.4', '2001:db8:1:2::']
  ]
  for (const [ip, key] of cases) t.equal(clientAddress(ip), key, ip)
  t.equal(clientAddress('2001:db8::1'), clientAddress('2001:db8::ffff:1'), 'one /64, one counter')
  t.not(clientAddress('2001:db8:0:1::1'), clientAddress('2001:db8:0:2::1'), 'another /64, another counter')
})

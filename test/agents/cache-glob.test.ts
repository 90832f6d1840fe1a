// Issue 11: cache-clear globs match in linear time and mean the same on both stores. The caches used to
// translate a glob into a RegExp, and `*?*?*?*?*?*?Z` on a few thousand keys blocked the event loop for
// seconds; with Redis the client's glob went to SCAN MATCH as it was. Now one two-pointer matcher serves
// both stores and Redis only ever sees the agent's escaped namespace.
import t from 'tap'
import { Redis } from 'ioredis'
import { globMatcher } from '../../src/cache/glob.js'
import { createMemoryCache } from '../../src/cache/memory-cache.js'
import { createRedisCache } from '../../src/cache/redis-cache.js'
import { cacheKey, cacheNamespace, type ResponseCache } from '../../src/cache/response-cache.js'
import { needs, REDIS_URL, redisPrefix } from '../support.js'

const CATASTROPHIC = '*?*?*?*?*?*?Z'
const KEYS = 5000
const METHODS = [
  'searchFlights',
  'searchHotels',
  'getVisaRequirements',
  'generateItinerary',
  'getDestinationRecommendations'
]
const ORDINARY = [
  '*',
  'search*',
  'searchFlights:*',
  'get?isa*',
  '[sg]*',
  '[^s]*',
  '*:[0-7]*',
  '*[a-c]',
  'search????s:*',
  'nothing*',
  '*Hotels*',
  '[a-h]e*',
  '*:?[0-9]*',
  '[z-a]*',
  '[]*',
  'searchFlights:',
  '*[^0-9a-f]'
]

/** The old matcher (a glob translated to an anchored RegExp): the reference for ordinary globs. */
function oldGlobRegExp (glob: string): RegExp {
  let source = ''
  for (let i = 0; i < glob.length; i++) {
    const char = glob[i]
    if (char === '*') source += '.*'
    else if (char === '?') source += '.'
    else if (char === '[') {
      const end = glob.indexOf(']', i + 1)
      if (end === -1) { source += '\\['; continue }
      const body = glob.slice(i + 1, end)
      source += `[${body}]`
      i = end
    } else source += char.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')
  }
  return new RegExp(`^${source}$`, 's')
}

function remainders (count: number): string[] {
  return Array.from({ length: count }, (_, i) =>
    cacheKey('', 'travel', METHODS[i % METHODS.length], { i }).slice('cache:travel:'.length)
  )
}

async function fill (cache: ResponseCache, namespace: string, keys: string[]): Promise<void> {
  for (const key of keys) await cache.set(namespace + key, { data: 1, model: 'offline', createdAt: 0 }, 600)
}

t.test('ordinary globs match exactly what the old RegExp translation matched', async t => {
  const texts = [...remainders(300), 'a*b', '(.+)', 'Z', '', 'searchFlights:']
  for (const glob of ORDINARY.filter(g => g !== '[z-a]*')) { // a reversed range threw a SyntaxError before (500)
    const matches = globMatcher(glob)
    const before = oldGlobRegExp(glob)
    t.same(texts.filter(matches), texts.filter(text => before.test(text)), glob)
  }
  // Random short globs over a small alphabet, against random short texts.
  const parts = ['*', '?', 'a', 'b', ':', '[ab]', '[^a]', '[a-c]']
  const letters = 'abc:'
  let seed = 7
  const random = (n: number) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n }
  let compared = 0
  for (let i = 0; i < 2000; i++) {
    const glob = Array.from({ length: 1 + random(6) }, () => parts[random(parts.length)]).join('')
    const text = Array.from({ length: random(9) }, () => letters[random(letters.length)]).join('')
    if (globMatcher(glob)(text) !== oldGlobRegExp(glob).test(text)) t.fail(`${glob} on ${text}`)
    compared++
  }
  t.equal(compared, 2000, 'random globs agree')
  t.ok(globMatcher('[z-a]*')('searchFlights:1'), 'a reversed range is a range, as in Redis')
  t.ok(globMatcher('[^]x')('yx'), '[^] is any one character')
  t.notOk(globMatcher('[]x')('yx'), '[] matches no character')
  t.ok(globMatcher('a[b')('a[b'), 'an unclosed [ is a literal')
})

t.test(`the catastrophic glob on a memory cache of ${KEYS} keys takes milliseconds`, async t => {
  const cache = createMemoryCache({ maxEntries: KEYS * 2 })
  const namespace = cacheNamespace('amk:', 'travel')
  await fill(cache, namespace, remainders(KEYS))
  const started = performance.now()
  const removed = await cache.clear(namespace, CATASTROPHIC)
  const ms = performance.now() - started
  t.comment(`memory cache, ${KEYS} keys, glob ${CATASTROPHIC}: ${ms.toFixed(1)} ms`)
  t.equal(removed, 0)
  t.ok(ms < 500, `took ${ms.toFixed(1)} ms (well under 50 ms expected; generous bound for a loaded machine)`)
  t.equal(await cache.size(namespace), KEYS, 'nothing removed')
  t.equal(await cache.clear(namespace, '*?*?*?*?*?*?*'), KEYS, 'the same shape that can match removes everything')
})

t.test(
  'Redis: the same keys removed as from memory, SCAN MATCH only ever sees the namespace, the catastrophic glob is quick',
  { skip: needs('redis') },
  async t => {
    const redis = new Redis(REDIS_URL)
    await new Promise(resolve => redis.once('ready', resolve)) // the cache uses Redis only once it is ready
    const watcher = new Redis(REDIS_URL)
    const monitor = await watcher.monitor()
    const prefix = redisPrefix()
    const scanned: string[] = []
    monitor.on('monitor', (_time: string, args: string[]) => {
      if (args[0]?.toLowerCase() === 'scan' && args.some(a => a.startsWith(prefix))) { scanned.push(args[args.findIndex(a => a.toLowerCase() === 'match') + 1]) }
    })
    t.teardown(async () => {
      monitor.disconnect()
      watcher.disconnect()
      const left = await redis.keys(`${prefix}*`)
      if (left.length > 0) await redis.del(...left)
      await redis.quit()
    })
    const namespace = cacheNamespace(prefix, 'travel')
    const keys = remainders(400)
    const memory = createMemoryCache({ maxEntries: 10_000 })
    const onRedis = createRedisCache(redis, { fallback: createMemoryCache({ maxEntries: 10 }) })
    await redis.set(`${cacheNamespace(prefix, 'travelers')}searchFlights:x`, '1')
    for (const glob of ORDINARY) {
      await fill(memory, namespace, keys)
      await fill(onRedis, namespace, keys)
      const removed = [await memory.clear(namespace, glob), await onRedis.clear(namespace, glob)]
      t.equal(removed[0], removed[1], `${glob}: ${removed[0]} removed from each`)
      const left = (await redis.keys(`${namespace}*`)).map(key => key.slice(namespace.length)).sort()
      t.same(left, keys.filter(key => !globMatcher(glob)(key)).sort(), `${glob}: Redis keeps the others`)
    }
    t.equal(
      await redis.exists(`${cacheNamespace(prefix, 'travelers')}searchFlights:x`),
      1,
      'a neighbouring namespace is untouched'
    )

    await fill(onRedis, namespace, remainders(KEYS))
    const started = performance.now()
    const removed = await onRedis.clear(namespace, CATASTROPHIC)
    const ms = performance.now() - started
    t.comment(`Redis cache, ${KEYS} keys, glob ${CATASTROPHIC}: ${ms.toFixed(1)} ms (SCAN round trips included)`)
    t.equal(removed, 0)
    t.ok(ms < 2000, `took ${ms.toFixed(1)} ms`)
    await new Promise(resolve => setTimeout(resolve, 100)) // the last MONITOR lines
    t.ok(scanned.length > 0, 'SCANs were seen')
    t.same(
      [...new Set(scanned)],
      [`${namespace.replace(/[*?[\]\\]/g, '\\$&')}*`],
      'only the escaped namespace reached SCAN MATCH'
    )
  }
)

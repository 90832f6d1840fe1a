// Response cache building blocks: canonical keys, the glob matcher, and the bounded memory LRU.
import t from 'tap'
import { createMemoryCache } from '../../src/cache/memory-cache.js'
import { globMatcher } from '../../src/cache/glob.js'
import { cacheKey, canonicalJson, escapeGlob } from '../../src/cache/response-cache.js'

t.test('canonical JSON ignores key order and undefined, keeps array order', async t => {
  t.equal(canonicalJson({ b: 1, a: { d: [2, 1], c: undefined } }), '{"a":{"d":[2,1]},"b":1}')
  t.equal(
    cacheKey('p:', 'travel', 'searchFlights', { x: 1, y: 2 }),
    cacheKey('p:', 'travel', 'searchFlights', { y: 2, x: 1 })
  )
  t.not(
    cacheKey('p:', 'travel', 'searchFlights', { x: [1, 2] }),
    cacheKey('p:', 'travel', 'searchFlights', { x: [2, 1] })
  )
  t.match(cacheKey('amk:', 'content', 'researchTopic', {}), /^amk:cache:content:researchTopic:[0-9a-f]{64}$/)
})

t.test('glob: * ? [..] and escapes, anchored', async t => {
  t.ok(globMatcher('search*')('searchFlights:abc'))
  t.notOk(globMatcher('search*')('xsearch'))
  t.ok(globMatcher('get?isa*')('getVisaRequirements:1'))
  t.ok(globMatcher('[sg]*')('getVisa'))
  t.notOk(globMatcher('[sg]*')('createPackage'))
  t.ok(globMatcher('a\\*b')('a*b'))
  t.notOk(globMatcher('a\\*b')('axb'))
  t.ok(globMatcher('(.+)')('(.+)'), 'regex characters are literal')
  t.equal(escapeGlob('amk[1]*?:'), 'amk\\[1\\]\\*\\?:')
})

t.test('memory cache: LRU bounded by count, expiry, namespace-scoped clear and size', async t => {
  let now = 0
  const cache = createMemoryCache({ maxEntries: 3, now: () => now })
  const entry = (data: string) => ({ data, model: 'm', createdAt: 0 })
  await cache.set('ns:a:1', entry('a'), 10)
  await cache.set('ns:b:1', entry('b'), 10)
  await cache.set('ns:c:1', entry('c'), 10)
  await cache.get('ns:a:1') // a is now the most recently used
  await cache.set('ns:d:1', entry('d'), 10)
  t.equal(cache.entries(), 3)
  t.equal(await cache.get('ns:b:1'), null, 'the least recently used entry was evicted')
  t.same((await cache.get('ns:a:1'))?.data, 'a')
  now = 10_001
  t.equal(await cache.get('ns:a:1'), null, 'expired')
  await cache.set('other:a:1', entry('x'), 10)
  await cache.set('ns:a:2', entry('y'), 10)
  t.equal(await cache.size('ns:'), 1)
  t.equal(await cache.clear('ns:', '*'), 2, 'the live entry and the expired one still held')
  t.equal(await cache.size('other:'), 1)
})

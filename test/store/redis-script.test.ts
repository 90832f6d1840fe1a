// Typed Lua scripts (src/store/redis-script.ts) on a real Redis: a script the server has not seen runs
// through the EVAL fallback and is then known by its SHA; replies come back parsed, a reply of another
// shape is an error naming the script; scripts queue on pipelines; a Redis error passes through.
import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { defineScript, reply } from '../../src/store/redis-script.js'
import { needs, REDIS_URL, redisPrefix } from '../support.js'

t.test('EVALSHA with an EVAL fallback, parsed replies', { skip: needs('redis') }, async t => {
  const redis = new Redis(REDIS_URL)
  t.teardown(() => redis.disconnect())
  const prefix = redisPrefix()
  // A comment unique to this run, so the server cannot know the script yet.
  const lua = `-- ${randomBytes(8).toString('hex')}
return {redis.call('INCRBY', KEYS[1], ARGV[1]), redis.call('INCRBY', KEYS[2], ARGV[2])}`
  const sha = createHash('sha1').update(lua).digest('hex')
  t.same(await redis.script('EXISTS', sha), [0], 'the server does not know the script')
  const add = defineScript({ name: 'add', keys: 2, lua, parse: reply.pair })

  t.same(await add(redis, [`${prefix}a`, `${prefix}b`], [2, 5]), [2, 5], 'unknown script: answered through EVAL')
  t.same(await redis.script('EXISTS', sha), [1], 'the server knows it now')
  t.same(await add(redis, [`${prefix}a`, `${prefix}b`], [1, 1]), [3, 6], 'known script: EVALSHA')

  const pipeline = redis.pipeline()
  add.queue(pipeline, [`${prefix}a`, `${prefix}b`], [10, 10])
  const results = await pipeline.exec()
  t.same(add.parse(results?.[0]?.[1]), [13, 16], 'queued on a pipeline, parsed with its parser')

  const wrongShape = defineScript({ name: 'wrong shape', keys: 'any', lua: "return 'text'", parse: reply.integer })
  await t.rejects(wrongShape(redis, []), /unexpected reply from the wrong shape script: expected an integer/)
  const failing = defineScript({
    name: 'failing',
    keys: 1,
    lua: "return redis.call('INCR', KEYS[1])",
    parse: reply.integer
  })
  await redis.set(`${prefix}text`, 'not a number')
  await t.rejects(failing(redis, [`${prefix}text`]), { name: 'ReplyError' }, 'a Redis error passes through unchanged')
  await redis.del(`${prefix}a`, `${prefix}b`, `${prefix}text`)
})

t.test('reply parsers check the shape', async t => {
  t.equal(reply.integer(3), 3)
  t.throws(() => reply.integer('3'), /expected an integer/)
  t.same(reply.triple([1, -1, 0]), [1, -1, 0])
  t.throws(() => reply.triple([1, 2]), /expected 3 integers/)
  t.throws(() => reply.pair([1, '2']), /expected 2 integers/)
  t.throws(() => reply.pair(null), /expected 2 integers/)
})

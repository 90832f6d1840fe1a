// The Redis circuit breaker (src/limits/redis-failover.ts) against a private redis-server: a reply error
// leaves it closed; a frozen Redis opens it and then nothing waits on Redis; after a thaw one probe closes
// it without any traffic; warnings are one line per component per period with the suppressed count; an
// event-loop stall with a healthy Redis does not open it.
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { attachBreaker, breakerFor, RedisBreaker, type Backend } from '../../src/limits/redis-failover.js'
import { createRedis } from '../../src/plugins/redis.js'
import { startRedis } from '../faults/support.js'

async function until (check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) return false
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  return true
}

function collector () {
  const lines: Array<{ obj: Record<string, unknown>, msg: string }> = []
  const push = (obj: object, msg: string) => { lines.push({ obj: { ...obj }, msg }) }
  return { lines, log: { warn: push, info: push } }
}

const server = await startRedis()
t.teardown(() => server.close())

async function client (t: Test, commandTimeoutMs: number): Promise<Redis> {
  const redis = createRedis(server.url, { connectTimeoutMs: 1000, commandTimeoutMs })
  redis.on('error', () => {})
  await redis.connect()
  t.teardown(() => redis.disconnect())
  return redis
}

t.test(
  'reply errors leave it closed; a frozen Redis opens it for every use; one probe closes it after the thaw',
  async t => {
    const redis = await client(t, 200)
    const switches: Backend[] = []
    const breaker = new RedisBreaker(redis, 300)
    t.teardown(() => breaker.close())
    breaker.onSwitch(to => switches.push(to))

    t.equal(
      await breaker.run(
        r => r.call('NO_SUCH_COMMAND'),
        () => 'memory'
      ),
      'memory',
      'the failed call falls back'
    )
    t.equal(breaker.state().backend, 'redis', 'a reply error means Redis answered: still closed')

    server.freeze()
    t.teardown(() => server.thaw())
    const started = performance.now()
    t.equal(
      await breaker.run(
        r => r.get('k'),
        () => 'memory',
        'cache'
      ),
      'memory'
    )
    t.ok(performance.now() - started < 1500, 'the first call waited one command timeout at most')
    t.equal(breaker.state().backend, 'memory', 'open')
    t.match(breaker.state().reason, /cache: Command timed out/)

    // While open nothing is sent to Redis, whichever component asks.
    let sent = 0
    const quick = performance.now()
    for (const component of ['limits', 'budgets', 'cache', 'event log', 'slots']) {
      t.equal(
        await breaker.run(
          async r => {
            sent++
            return r.get('k')
          },
          () => 'memory',
          component
        ),
        'memory'
      )
      breaker.fire(component, async () => {
        sent++
      })
    }
    t.equal(sent, 0, 'no component reached Redis while open')
    t.ok(performance.now() - quick < 100, 'fallbacks answer at once')
    t.equal(breaker.usable(), false)

    server.thaw()
    t.ok(await until(() => breaker.state().backend === 'redis', 5000), 'closed by the probe, with no traffic at all')
    t.same(switches, ['memory', 'redis'])
    t.equal(breaker.state().opens, 1)
    t.equal(
      await breaker.run(
        r => r.ping(),
        () => 'memory'
      ),
      'PONG'
    )
  }
)

t.test('warnings: one line per component per period, then the count suppressed', async t => {
  const redis = await client(t, 500)
  const { lines, log } = collector()
  const breaker = new RedisBreaker(redis, 60_000, { log, warnIntervalMs: 300 })
  t.teardown(() => breaker.close())
  const outage = new Error('Connection is closed.')
  for (let i = 0; i < 50; i++) {
    breaker.failure('stream event log', outage)
    breaker.failure('response cache', outage)
  }
  const perComponent = (name: string) => lines.filter(l => l.obj.component === name)
  t.equal(perComponent('stream event log').length, 1)
  t.equal(perComponent('response cache').length, 1)
  t.equal(lines.filter(l => /circuit open/.test(l.msg)).length, 1, 'the breaker opened once for both')
  await new Promise(resolve => setTimeout(resolve, 350))
  breaker.failure('stream event log', outage)
  t.equal(perComponent('stream event log').length, 2)
  t.equal(perComponent('stream event log')[1].obj.suppressed, 49, 'the next line counts what was suppressed')
})

t.test('an event-loop stall with a healthy Redis does not open it', async t => {
  const redis = await client(t, 100)
  const breaker = new RedisBreaker(redis, 60_000)
  t.teardown(() => breaker.close())
  let timedOut = false
  const pending = breaker.run(
    r =>
      r.get('k').catch((error: Error) => {
        timedOut = /timed out/.test(error.message)
        throw error
      }),
    () => 'memory'
  )
  const stallEnds = Date.now() + 1500
  while (Date.now() < stallEnds) { /* the process is blocked; Redis answered long ago */ }
  t.equal(await pending, 'memory')
  t.ok(timedOut, 'the command did time out (the stall made the reply late)')
  t.ok(await until(() => breaker.state().stallsIgnored === 1, 3000), 'a PING confirmed Redis is fine')
  t.equal(breaker.state().backend, 'redis', 'still closed')
  t.equal(breaker.state().opens, 0)
})

t.test('breakerFor: the attached breaker, else one of its own per client', async t => {
  const redis = new Redis(server.url, { lazyConnect: true })
  const shared = new RedisBreaker(redis, 1000)
  t.teardown(() => shared.close())
  t.not(breakerFor(redis), shared)
  attachBreaker(redis, shared)
  t.equal(breakerFor(redis), shared)
  t.equal(new RedisBreaker(null, 1000).usable(), false, 'no Redis: always the fallback')
})

// The store layer's view of an unreachable database: which driver errors mean "unavailable" (and become
// 503 AMK_DATABASE_UNAVAILABLE with Retry-After, the driver's message kept as the cause only), and on a
// real PostgreSQL the bounded waits — pool acquire and statement timeouts — while a slow query alone
// does not make the database count as down.
import t from 'tap'
import { needs, postgresDatabase } from '../support.js'
import { openDatabase } from '../../src/store/database.js'
import { databaseUnavailable, isConnectionError, translate } from '../../src/store/unavailable.js'

const coded = (code: string, message = 'x') => Object.assign(new Error(message), { code })

t.test('connection-class errors are recognised; query errors are not', async t => {
  for (const error of [
    coded('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:5433'),
    coded('ECONNRESET'),
    coded('ETIMEDOUT'),
    coded('57P01', 'terminating connection due to administrator command'),
    coded('57P03', 'the database system is starting up'),
    coded('53300'),
    coded('08006'),
    coded('57014', 'canceling statement due to statement timeout'),
    new Error('timeout exceeded when trying to connect'),
    new Error('Connection terminated unexpectedly'),
    new Error('Query read timeout'),
    new AggregateError([coded('ECONNREFUSED'), coded('ECONNREFUSED')], ''),
    new Error('wrapped', { cause: coded('ECONNRESET') })
  ]) {
    t.ok(isConnectionError(error), `${Reflect.get(error, 'code') ?? error.message}`)
  }
  for (const error of [
    coded('23505', 'duplicate key value'),
    coded('42P01', 'relation does not exist'),
    new Error('roll back'),
    'text',
    null
  ]) {
    t.notOk(isConnectionError(error), String(error))
  }
  const translated = translate(coded('ECONNREFUSED', 'connect ECONNREFUSED 10.0.0.7:5432'))
  t.match(translated, { statusCode: 503, code: 'AMK_DATABASE_UNAVAILABLE', headers: { 'retry-after': '1' } })
  t.notMatch(
    String(Reflect.get(Object(translated), 'message')),
    /10\.0\.0\.7|ECONNREFUSED/,
    'no address or driver text in the message'
  )
  const plain = coded('23505')
  t.equal(translate(plain), plain, 'other errors pass unchanged')
  t.equal(isConnectionError(databaseUnavailable()), true)
})

t.test(
  'PostgreSQL: pool-acquire and statement timeouts answer 503 quickly; a slow query is not an outage',
  { skip: needs('postgres') },
  async t => {
    const db = await openDatabase({
      databaseUrl: await postgresDatabase(),
      dataDir: '',
      poolMax: 1,
      acquireTimeoutMs: 200,
      statementTimeoutMs: 1500
    })
    t.teardown(() => db.close())
    await db.ping()
    const slow = db.query('SELECT pg_sleep(1)')
    let started = Date.now()
    await t.rejects(db.query('SELECT 1'), { code: 'AMK_DATABASE_UNAVAILABLE' }, 'the only connection is busy: 503')
    const acquireMs = Date.now() - started
    t.ok(acquireMs < 1000, `after the acquire timeout (${acquireMs} ms)`)
    await slow
    t.same(
      await db.query('SELECT 1 AS one'),
      [{ one: 1 }],
      'the slow query finished; the database never counted as down'
    )

    started = Date.now()
    await t.rejects(
      db.query('SELECT pg_sleep(5)'),
      { code: 'AMK_DATABASE_UNAVAILABLE' },
      'past the statement timeout: 503'
    )
    const statementMs = Date.now() - started
    t.ok(statementMs < 4000, `after the statement timeout (${statementMs} ms)`)
    t.same(await db.query('SELECT 2 AS two'), [{ two: 2 }], 'and the next query runs')
    t.comment(`acquire timeout answered in ${acquireMs} ms, statement timeout in ${statementMs} ms`)
  }
)

t.test('PostgreSQL: nothing listening → 503 at once', { skip: needs('postgres') }, async t => {
  const db = await openDatabase({ databaseUrl: 'postgres://postgres@127.0.0.1:1/postgres', dataDir: '' })
  t.teardown(() => db.close())
  const started = Date.now()
  await t.rejects(db.query('SELECT 1'), { code: 'AMK_DATABASE_UNAVAILABLE', statusCode: 503 })
  await t.rejects(db.ping(), { code: 'AMK_DATABASE_UNAVAILABLE' })
  t.ok(Date.now() - started < 1500, `answered in ${Date.now() - started} ms`)
})

// PGlite in a DATA_DIR runs on a thread of its own (src/store/pglite-thread.ts): the API's event loop goes on
// while a statement runs, and the Database answers as the in-process one does: rows with numbers, JSON and
// dates, exec's counts, SQLSTATE errors with their fields, transactions that commit or roll back and that a
// statement from outside waits for, a close after which every call answers 503 (and the directory's lock is
// released), a process that ends by itself with the database open and idle, and the worker compiled to
// JavaScript (npm start, dist/) in a process started with `--input-type=module -e` and V8 options, which a
// worker inherits. Another process's lock on the directory is refused across the thread too
// (test/store/data-dir-lock.test.ts).
import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ROOT, SRC, sourceFiles, transpile } from '../../scripts/start.mjs'
import { openDatabase, type Database } from '../../src/store/database.js'

t.setTimeout(120_000)

let dir: string
let db: Database
t.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'amk-thread-'))
  db = await openDatabase({ dataDir: join(dir, 'data') })
  await db.exec('CREATE TABLE t (id int8 PRIMARY KEY, doc jsonb, at timestamptz, price numeric)')
})
t.teardown(async () => {
  await db.close()
  await rm(dir, { recursive: true, force: true })
})

t.test('rows come back typed as in-process: int8 and numeric as numbers, jsonb as values, timestamptz as dates', async t => {
  t.equal(db.kind, 'pglite')
  t.equal(db.location, join(dir, 'data'))
  t.equal(await db.exec("INSERT INTO t VALUES (1, '{\"a\":[1,\"é😀\"]}', '2030-01-02T03:04:05Z', 1.25), (2, NULL, NULL, NULL)"), 2)
  const rows = await db.query('SELECT * FROM t WHERE id = $1', [1])
  t.same(rows, [{ id: 1, doc: { a: [1, 'é😀'] }, at: new Date('2030-01-02T03:04:05Z'), price: 1.25 }])
  t.ok(rows[0].at instanceof Date)
  t.equal(await db.exec('UPDATE t SET price = 2 WHERE id > 0'), 2)
  await db.exec('DELETE FROM t')
})

t.test('a database error keeps its SQLSTATE, message and fields; the next statement runs', async t => {
  await db.exec('INSERT INTO t (id) VALUES (7)')
  await t.rejects(db.query('INSERT INTO t (id) VALUES ($1)', [7]), {
    name: 'error',
    code: '23505',
    constraint: 't_pkey',
    message: /duplicate key/
  })
  await t.rejects(db.exec('SELECT nope FROM t'), { code: '42703' })
  t.same(await db.query('SELECT id FROM t'), [{ id: 7 }])
  await db.exec('DELETE FROM t')
})

t.test('a transaction commits what its callback wrote; a throwing callback rolls back and its error is rethrown', async t => {
  const answer = await db.transaction(async tx => {
    await tx.query('INSERT INTO t (id) VALUES ($1), ($2)', [1, 2])
    return (await tx.query<{ n: number }>('SELECT count(*)::int AS n FROM t'))[0].n
  })
  t.equal(answer, 2, 'the transaction sees its own rows')
  const failure = new Error('changed my mind')
  await t.rejects(db.transaction(async tx => {
    await tx.query('INSERT INTO t (id) VALUES (3)')
    throw failure
  }), failure)
  await t.rejects(db.transaction(tx => tx.query('INSERT INTO t (id) VALUES (1)')), { code: '23505' },
    'a failed statement fails the transaction with its SQLSTATE')
  t.same(await db.query('SELECT id FROM t ORDER BY id'), [{ id: 1 }, { id: 2 }])
  await db.exec('DELETE FROM t')
})

t.test('a statement from outside an open transaction waits for its end and sees only what it committed', async t => {
  let release!: () => void
  const held = new Promise<void>(resolve => { release = resolve })
  let inserted!: () => void
  const wrote = new Promise<void>(resolve => { inserted = resolve })
  const transaction = db.transaction(async tx => {
    await tx.query('INSERT INTO t (id) VALUES (10)')
    inserted()
    await held
    await tx.query('INSERT INTO t (id) VALUES (11)')
  })
  await wrote
  let outsideDone = false
  const outside = db.query<{ n: number }>('SELECT count(*)::int AS n FROM t').then(rows => {
    outsideDone = true
    return rows[0].n
  })
  await new Promise(resolve => setTimeout(resolve, 50))
  t.notOk(outsideDone, 'the outside statement is still waiting while the transaction is open')
  release()
  await transaction
  t.equal(await outside, 2, 'it ran after the commit')
  await db.exec('DELETE FROM t')
})

t.test("the API's event loop runs while a long statement runs on the database's thread", async t => {
  let ticks = 0
  const timer = setInterval(() => { ticks++ }, 5)
  const [row] = await db.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM generate_series(1, 2000000) a, generate_series(1, 2) b')
  clearInterval(timer)
  t.equal(row.n, 4_000_000)
  t.ok(ticks >= 3, `timers fired ${ticks} times during the statement (none would, were it on this thread)`)
})

t.test('after close, every call answers 503 AMK_DATABASE_UNAVAILABLE; a second close does nothing', async t => {
  const other = await openDatabase({ dataDir: join(dir, 'closing') })
  await other.exec('SELECT 1')
  await other.close()
  await t.rejects(other.query('SELECT 1'), { code: 'AMK_DATABASE_UNAVAILABLE', statusCode: 503 })
  await t.rejects(other.ping(), { code: 'AMK_DATABASE_UNAVAILABLE' })
  await other.close()
  const reopened = await openDatabase({ dataDir: join(dir, 'closing') })
  t.equal(await reopened.exec('SELECT 1'), 1, 'the lock was released: the directory opens again')
  await reopened.close()
})

/** Runs `node [args] --input-type=module -e` with a script that opens a DATA_DIR and answers one statement. */
function answerInChild (t: Test, database: string, args: string[], dataDir: string) {
  const script = `const { openDatabase } = await import(${JSON.stringify(database)});
    const db = await openDatabase({ dataDir: ${JSON.stringify(dataDir)} });
    console.log((await db.query('SELECT 41 + 1 AS n'))[0].n)`
  const child = spawnSync(process.execPath, [...args, '--input-type=module', '-e', script], {
    encoding: 'utf8',
    timeout: 60_000
  })
  t.equal(child.signal, null, 'not killed by the timeout')
  t.equal(child.status, 0, child.stderr)
  t.equal(child.stdout.trim(), '42', 'the statement answered before the process ended')
}

t.test('a process whose database is open and idle ends by itself (the thread keeps it alive only while a statement waits)', async t => {
  const database = fileURLToPath(new URL('../../src/store/database.ts', import.meta.url))
  answerInChild(t, database, ['--import=tsx'], join(dir, 'idle'))
})

t.test('compiled to JavaScript (npm start, dist/), the worker runs from its .js file, whatever flags started the process', async t => {
  // Under node_modules, as npm start's cache is, so the build finds the dependencies.
  const cache = join(ROOT, 'node_modules', '.cache', 'amrikyy-agent-api')
  await mkdir(cache, { recursive: true })
  const build = await mkdtemp(join(cache, 'test-thread-'))
  t.teardown(() => rm(build, { recursive: true, force: true }))
  await transpile(await import('esbuild'), sourceFiles(SRC), build)
  // V8's and the process's own options too, which a worker can inherit but not be handed.
  answerInChild(t, join(build, 'src', 'store', 'database.js'), ['--max-old-space-size=512', '--title=amk-thread-test'],
    join(dir, 'compiled'))
})

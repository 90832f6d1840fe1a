// PGlite's exec() sends its statement straight to Postgres under the query lock (src/store/pglite.ts). It must
// behave as db.exec() does: text outside ASCII arrives intact, a database error throws with its SQLSTATE and
// leaves the database usable, several statements run in order, and a statement issued while a transaction()
// awaits between two of its statements waits for that transaction instead of becoming part of it (its row
// survives the transaction's rollback), and one issued while the database closes gets PGlite's error, not a call
// into a module being shut down.
import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openPglite } from '../../src/store/pglite.js'
import type { Database } from '../../src/store/database.js'

t.setTimeout(120_000)

let db: Database
t.before(async () => {
  db = await openPglite('memory://')
  await db.exec('CREATE TABLE t (id uuid PRIMARY KEY, note text NOT NULL)')
})
t.teardown(() => db.close())

const ids = async () => (await db.query<{ note: string }>('SELECT note FROM t ORDER BY note')).map(row => row.note)

t.test('a statement runs, and non-ASCII text arrives intact, and a data error throws with its SQLSTATE without breaking the next one', async t => {
  await db.exec("INSERT INTO t VALUES ('00000000-0000-4000-8000-000000000001', 'first')")
  await t.rejects(db.exec("INSERT INTO t VALUES ('not a uuid', 'bad')"), { code: '22P02' })
  await t.rejects(db.exec("INSERT INTO t VALUES ('00000000-0000-4000-8000-000000000001', 'dup')"), { code: '23505' })
  await t.rejects(db.exec('INSERT INTO t VALUES (NULL, \'x\0y\')'), { code: '22021' })
  await db.exec("INSERT INTO t VALUES ('00000000-0000-4000-8000-000000000002', 'second, é€😀')")
  t.same(await ids(), ['first', 'second, é€😀'])
})

t.test('a long statement of multi-byte text arrives byte for byte (the Query message is sized in UTF-8 bytes)', async t => {
  const note = 'é€😀 日本語 '.repeat(6000) + 'end' // about 100 KB of UTF-8 in 48 K UTF-16 units
  await db.exec(`INSERT INTO t VALUES ('00000000-0000-4000-8000-0000000000ff', $amk$${note}$amk$)`)
  const [row] = await db.query<{ note: string, bytes: number }>(
    "SELECT note, octet_length(note) AS bytes FROM t WHERE id = '00000000-0000-4000-8000-0000000000ff'")
  t.equal(row.note, note)
  t.equal(row.bytes, Buffer.byteLength(note))
  await db.exec("DELETE FROM t WHERE id = '00000000-0000-4000-8000-0000000000ff'")
})

t.test('in a DATA_DIR, what exec wrote is there after a close and a reopen (nothing to sync first)', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'amk-exec-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const first = await openPglite(dir)
  await first.exec('CREATE TABLE kept (n int)')
  t.equal(await first.exec('INSERT INTO kept SELECT generate_series(1, 3)'), 3)
  await first.close()
  const again = await openPglite(dir)
  t.teardown(() => again.close())
  t.same(await again.query('SELECT n FROM kept ORDER BY n'), [{ n: 1 }, { n: 2 }, { n: 3 }])
})

t.test('several statements in one exec run in order, in one implicit transaction', async t => {
  await db.exec(
    "INSERT INTO t VALUES ('00000000-0000-4000-8000-000000000003', 'third'); " +
    "UPDATE t SET note = 'third, updated' WHERE note = 'third'"
  )
  await t.rejects(db.exec(
    "INSERT INTO t VALUES ('00000000-0000-4000-8000-000000000004', 'fourth'); SELECT 1/0"
  ), { code: '22012' })
  t.same(await ids(), ['first', 'second, é€😀', 'third, updated'], 'the failed pair left nothing')
})

t.test('exec answers the rows its last statement changed, inside a transaction too', async t => {
  t.equal(await db.exec("UPDATE t SET note = note WHERE note LIKE '%'"), 3)
  t.equal(await db.exec("UPDATE t SET note = note WHERE note = 'nobody'"), 0)
  t.equal(await db.exec("DELETE FROM t WHERE note = 'nobody'; UPDATE t SET note = note WHERE note = 'first'"), 1)
  t.equal(await db.exec('SELECT 1'), 1, 'a SELECT counts its rows, as its tag does')
  // An answer of megabytes reaches exec in many chunks, messages cut across them; an error after rows still throws.
  t.equal(await db.exec("SELECT n, repeat('x', 50) FROM generate_series(1, 100000) AS n"), 100_000)
  await t.rejects(db.exec('SELECT CASE WHEN n < 50000 THEN n ELSE 1 / 0 END FROM generate_series(1, 60000) AS n'), {
    code: '22012',
    message: 'division by zero'
  })
  t.equal(await db.exec('BEGIN; COMMIT'), 0, 'a tag without a count')
  t.equal(await db.exec('CREATE TEMP TABLE scratch (n int)'), 0, 'a statement without a count')
  // A statement issued while a transaction awaits goes through db.exec() after it: the same answer.
  let release!: () => void
  const paused = new Promise<void>(resolve => { release = resolve })
  const tx = db.transaction(async q => { await q.query('SELECT 1'); await paused })
  const counted = db.exec("UPDATE t SET note = note WHERE note = 'first'")
  release()
  await tx
  t.equal(await counted, 1)
})

t.test('an exec issued during a transaction waits for it and is not rolled back with it', async t => {
  let release!: () => void
  const paused = new Promise<void>(resolve => { release = resolve })
  let inside!: () => void
  const started = new Promise<void>(resolve => { inside = resolve })
  const transaction = db.transaction(async tx => {
    await tx.query("INSERT INTO t VALUES ('00000000-0000-4000-8000-000000000005', 'in the transaction')")
    inside()
    await paused
    throw new Error('roll back')
  })
  await started
  let done = false
  const outside = db.exec("INSERT INTO t VALUES ('00000000-0000-4000-8000-000000000006', 'outside')")
    .then(() => { done = true })
  await new Promise(resolve => setTimeout(resolve, 50))
  t.equal(done, false, 'the exec waits while the transaction is open')
  release()
  await t.rejects(transaction, /roll back/)
  await outside
  t.same(await ids(), ['first', 'outside', 'second, é€😀', 'third, updated'])
})

t.test('a closing or closed database refuses with its own error', async t => {
  const other = await openPglite('memory://')
  const closing = other.close()
  // close() marks itself closing within its first few microtask turns (2 to 15 with PGlite 0.5), then shuts the
  // module down without the lock; an exec arriving then used to hang on the module being shut down.
  for (let turn = 0; turn < 5; turn++) await Promise.resolve()
  let timer: NodeJS.Timeout | undefined
  const hang = new Promise((resolve, reject) => { timer = setTimeout(() => reject(new Error('hung')), 5000) })
  await t.rejects(Promise.race([other.exec('SELECT 1'), hang]), /PGlite is closing/).finally(() => clearTimeout(timer))
  await closing
  await t.rejects(other.exec('SELECT 1'), /PGlite is closed/)
})

// Database.write on PGlite (src/store/write-group.ts): a write sent while another runs goes, with every other
// write that waited, in one exec once it is done; each caller gets its own statement's count, and a group that
// fails runs again one by one so that only a bad write fails, with its own error, and no write lands twice.
// Checked with a counting stand-in for the exec, then on PGlite in memory and on its own thread in a DATA_DIR.
import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openDatabase, type Database } from '../../src/store/database.js'
import { groupWrites } from '../../src/store/write-group.js'

t.setTimeout(120_000)

/** An exec that answers each statement's number (`SET n`) once released, and records what each exec carried. */
function fakeExec () {
  const execs: string[][] = []
  const gates: Array<() => void> = []
  let failOn: string | undefined
  const execEach = async (sql: string) => {
    const statements = sql.split('\n;\n')
    execs.push(statements)
    await new Promise<void>(resolve => gates.push(resolve))
    if (failOn && statements.includes(failOn)) throw Object.assign(new Error(`bad: ${failOn}`), { code: '22P02' })
    return statements.map(s => Number(s.split(' ')[1]))
  }
  const releaseAll = async () => {
    while (gates.length > 0) {
      gates.shift()!()
      await new Promise(resolve => setImmediate(resolve))
    }
  }
  return { execEach, execs, releaseAll, fail (statement: string) { failOn = statement } }
}

t.test('the first write goes at once; those sent while it runs go together after it, each with its own count', async t => {
  const fake = fakeExec()
  const write = groupWrites(fake.execEach)
  const first = write('SET 1')
  t.same(fake.execs, [['SET 1']], 'sent at once, alone')
  const rest = [write('SET 2'), write('SET 3'), write('SET 4')]
  t.equal(fake.execs.length, 1, 'the others wait for the running one')
  await fake.releaseAll()
  await new Promise(resolve => setImmediate(resolve))
  await fake.releaseAll()
  t.same(await Promise.all([first, ...rest]), [1, 2, 3, 4])
  t.same(fake.execs, [['SET 1'], ['SET 2', 'SET 3', 'SET 4']], 'two execs for four writes')
  t.equal(await Promise.race([write('SET 5'), fake.releaseAll().then(() => write('SET 6'))]), 5, 'idle again: at once')
})

t.test('a group that fails runs again write by write: only the bad one fails, with its own error', async t => {
  const fake = fakeExec()
  const write = groupWrites(fake.execEach)
  fake.fail('SET 3')
  const results = [write('SET 1'), write('SET 2'), write('SET 3'), write('SET 4')].map(p =>
    p.then(count => ({ count }), (error: Error) => ({ error: error.message })))
  for (let i = 0; i < 10; i++) await fake.releaseAll()
  t.same(await Promise.all(results), [{ count: 1 }, { count: 2 }, { error: 'bad: SET 3' }, { count: 4 }])
  t.same(fake.execs, [['SET 1'], ['SET 2', 'SET 3', 'SET 4'], ['SET 2'], ['SET 3'], ['SET 4']])
})

t.test('one exec carries at most 64 writes and about a megabyte', async t => {
  const fake = fakeExec()
  const write = groupWrites(fake.execEach)
  const small = Array.from({ length: 101 }, (_, i) => write(`SET ${i}`))
  for (let i = 0; i < 10; i++) await fake.releaseAll()
  await Promise.all(small)
  t.same(fake.execs.map(e => e.length), [1, 64, 36])
  fake.execs.length = 0
  const big = `SET 7 ${'x'.repeat(400_000)}`
  const large = [write('SET 0'), write(big), write(big), write(big), write('SET 1')]
  for (let i = 0; i < 10; i++) await fake.releaseAll()
  t.same(await Promise.all(large), [0, 7, 7, 7, 1])
  t.same(fake.execs.map(e => e.length), [1, 2, 2], 'two 400 KB writes fit one exec, a third waits for the next')
})

const stores: Array<{ name: string, open(): Promise<{ db: Database, done(): Promise<void> }> }> = [
  {
    name: 'PGlite in memory',
    async open () {
      const db = await openDatabase({ dataDir: 'memory://' })
      return { db, done: () => db.close() }
    }
  },
  {
    name: 'PGlite on its thread, in a DATA_DIR',
    async open () {
      const dir = await mkdtemp(join(tmpdir(), 'amk-write-group-'))
      const db = await openDatabase({ dataDir: dir })
      return { db, done: async () => { await db.close(); await rm(dir, { recursive: true, force: true }) } }
    }
  }
]

for (const store of stores) {
  t.test(`${store.name}: concurrent writes share execs, answer their own counts, and land exactly once`, async t => {
    const { db, done } = await store.open()
    t.teardown(done)
    await db.exec('CREATE TABLE notes (n int NOT NULL, note text NOT NULL)')
    await db.exec('INSERT INTO notes SELECT n, \'seed\' FROM generate_series(1, 5) AS n')
    const writes = [
      db.write("INSERT INTO notes VALUES (10, 'a') -- a trailing comment"),
      db.write("UPDATE notes SET note = 'seen' WHERE n <= 3"),
      db.write("INSERT INTO notes VALUES ('not a number', 'bad')"),
      db.write("UPDATE notes SET note = 'none' WHERE n > 100"),
      db.write("INSERT INTO notes SELECT n, 'b' FROM generate_series(20, 21) AS n")
    ].map(p => p.then(count => ({ count }), (error: { code?: string }) => ({ code: error.code })))
    t.same(await Promise.all(writes), [{ count: 1 }, { count: 3 }, { code: '22P02' }, { count: 0 }, { count: 2 }])
    t.same(
      await db.query('SELECT n, note FROM notes WHERE note <> \'seed\' ORDER BY n'),
      [{ n: 1, note: 'seen' }, { n: 2, note: 'seen' }, { n: 3, note: 'seen' }, { n: 10, note: 'a' },
        { n: 20, note: 'b' }, { n: 21, note: 'b' }],
      'each good write applied once, though its group was rolled back and run again'
    )
    // Writes of one exec share its implicit transaction, so its id tells which went together.
    await db.exec('CREATE TABLE sent (k int, tx bigint)')
    await Promise.all([1, 2, 3, 4].map(k => db.write(`INSERT INTO sent VALUES (${k}, txid_current())`)))
    const rows = await db.query<{ k: number, tx: number }>('SELECT k, tx FROM sent ORDER BY k')
    t.equal(new Set(rows.map(row => row.tx)).size, 2, 'four writes in two transactions')
    t.not(rows[0].tx, rows[1].tx, 'the first alone')
    t.ok(rows[1].tx === rows[2].tx && rows[2].tx === rows[3].tx, 'the three sent while it ran, together')
  })
}

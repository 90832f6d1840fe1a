// The usage journal (src/store/journal.ts): 'durable' ledger writes on PGlite in a DATA_DIR are on
// disk when record() resolves and reach the database in group commits; a row leaves the journal once the
// database or the buffer holds it; a SIGKILLed process's rows are replayed by the next start, exactly once.
import t, { type Test } from 'tap'
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openPglite } from '../../src/store/pglite.js'
import { loadMigrations } from '../../src/store/migrate.js'
import { createFileBuffer, createMemoryBuffer } from '../../src/store/usage-buffer.js'
import { openJournal } from '../../src/store/journal.js'
import { createUsageLedger } from '../../src/store/usage-ledger.js'
import { startServer } from '../child-server.js'
import { ADMIN_KEY, buildApp, KEYS_ENV } from '../agents/support.js'
import { STORED_WRITES, usageRow } from '../support.js'

const id = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`

function tempDir (t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'amk-journal-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

const segments = (dir: string) => readdirSync(dir).filter(name => name.startsWith('journal-')).sort()
/** The JSON lines of every journal segment in `dir`. */
const lines = (dir: string) =>
  segments(dir).flatMap(name => readFileSync(join(dir, name), 'utf8').split('\n').filter(Boolean))

t.test('append writes the row before it returns; the last release empties the file', async t => {
  const dir = tempDir(t)
  const journal = await openJournal(dir, async () => {})
  const releaseA = journal.append({ call_id: 'a' })
  t.same(lines(dir).map(line => JSON.parse(line)), [{ call_id: 'a' }], 'on disk when append returns')
  const releaseB = journal.append({ call_id: 'b' })
  releaseA()
  releaseA()
  t.equal(journal.open(), 1, 'a second release of the same row does nothing')
  t.equal(lines(dir).length, 2, 'the file keeps its rows while one is unreleased')
  releaseB()
  t.equal(journal.open(), 0)
  t.same(segments(dir).map(name => statSync(join(dir, name)).size), [0], 'emptied once every row is released')
  journal.append({ call_id: 'c' })
  t.same(lines(dir).map(line => JSON.parse(line).call_id), ['c'], 'and appends start again at its beginning')
  journal.close()
})

t.test('a full segment is replaced; it is deleted once its last row is released, not before', async t => {
  const dir = tempDir(t)
  const journal = await openJournal(dir, async () => {})
  const padding = 'x'.repeat(10_000)
  const releases = Array.from({ length: 110 }, (_, i) => journal.append({ call_id: String(i), padding }))
  t.equal(segments(dir).length, 2, 'past 1 MB a second segment takes the appends')
  const first = segments(dir)[0]
  for (const release of releases.slice(1)) release()
  t.ok(segments(dir).includes(first), 'the full segment stays while one of its rows is unreleased')
  releases[0]()
  t.notOk(segments(dir).includes(first), 'and goes with its last release')
  t.equal(segments(dir).length, 1)
  journal.close()
  t.same(segments(dir), [], 'closing with nothing unreleased leaves no file')
})

t.test('the next open hands unreleased rows to the buffer, skips a torn line and deletes the files', async t => {
  const dir = tempDir(t)
  const journal = await openJournal(dir, async () => {})
  journal.append({ call_id: 'kept-1' })
  journal.append({ call_id: 'gone' })()
  journal.append({ call_id: 'kept-2' })
  journal.close()
  t.throws(() => journal.append({ call_id: 'late' }), 'a closed journal takes no row')
  const [name] = segments(dir)
  writeFileSync(join(dir, name), readFileSync(join(dir, name), 'utf8') + '{"call_id":"torn', { flag: 'w' })
  const adopted: unknown[] = []
  const reopened = await openJournal(dir, async rows => { adopted.push(...rows) })
  // A released row shares its segment with unreleased ones until the segment empties: it is replayed too, and
  // the upsert makes that a no-op.
  t.same(adopted, [{ call_id: 'kept-1' }, { call_id: 'gone' }, { call_id: 'kept-2' }],
    'the segment\'s rows, the torn line skipped')
  t.same(segments(dir).length, 1, 'the old segment is gone; only the new one is there')
  reopened.close()

  const failing = await openJournal(dir, async () => {})
  failing.append({ call_id: 'kept-3' })
  failing.close()
  await t.rejects(openJournal(dir, async () => { throw new Error('buffer full') }), /buffer full/)
  t.same(lines(dir).map(line => JSON.parse(line).call_id), ['kept-3'], 'rows the buffer did not take stay')
})

t.test('the ledger with a journal: record() resolves before the write, one INSERT per window, journal emptied',
  async t => {
    const dir = tempDir(t)
    const db = await openPglite(join(dir, 'db'), { migrations: await loadMigrations() })
    t.teardown(() => db.close())
    const journal = await openJournal(join(dir, 'usage-buffer'), async () => {})
    const statements: string[] = []
    const ledger = createUsageLedger(db, {
      ...STORED_WRITES,
      journal,
      journalMs: 50,
      exec: sql => {
        statements.push(sql)
        return db.exec(sql)
      }
    })
    await ledger.record(usageRow(id(1), 'pending'))
    await ledger.record(usageRow(id(2), 'pending'))
    await ledger.record(usageRow(id(1), 'success'))
    const count = async () => (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM usage_ledger'))[0].n
    t.equal(await count(), 0, 'not in the database yet')
    t.equal(lines(join(dir, 'usage-buffer')).length, 3, 'but in the journal, reservations and settlement')
    await ledger.settled()
    t.equal(statements.filter(sql => sql.startsWith('INSERT')).length, 1, 'one INSERT for the window')
    t.same(
      await db.query('SELECT call_id, status FROM usage_ledger ORDER BY call_id'),
      [{ call_id: id(1), status: 'success' }, { call_id: id(2), status: 'pending' }]
    )
    t.equal(journal.open(), 0, 'every row released')
    t.same(lines(join(dir, 'usage-buffer')), [], 'the journal is empty')
    await ledger.close()
    t.same(segments(join(dir, 'usage-buffer')), [], 'close leaves no journal file')
  })

t.test("journaled rows wait for journalMs, not 'behind''s window; a row the journal cannot take does not wait",
  async t => {
    const dir = tempDir(t)
    const db = await openPglite('memory://', { migrations: await loadMigrations() })
    t.teardown(() => db.close())
    const journal = await openJournal(dir, async () => {})
    let failAppend = false
    const statements: string[] = []
    const ledger = createUsageLedger(db, {
      ...STORED_WRITES,
      journal: {
        append: entry => {
          if (failAppend) throw new Error('ENOSPC')
          return journal.append(entry)
        },
        open: () => journal.open(),
        close: () => journal.close()
      },
      behindMs: 1,
      journalMs: 60_000,
      exec: sql => {
        statements.push(sql)
        return db.exec(sql)
      },
      log: { warn () {}, error () {} }
    })
    const count = async () => (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM usage_ledger'))[0].n
    await ledger.record(usageRow(id(1), 'success'))
    await ledger.record(usageRow(id(2), 'success'))
    await new Promise(resolve => setTimeout(resolve, 100))
    t.equal(await count(), 0, "100 ms later, far past behindMs, the journaled rows still wait for journalMs' window")
    t.equal(journal.open(), 2)

    failAppend = true
    const started = Date.now()
    await ledger.record(usageRow(id(3), 'success'))
    t.ok(Date.now() - started < 5000, `a row the journal refused is stored at once (${Date.now() - started} ms)`)
    t.equal(await count(), 3, 'in the same INSERT as the journaled rows queued before it')
    t.equal(statements.filter(sql => sql.startsWith('INSERT')).length, 1)
    t.equal(journal.open(), 0, 'which left the journal')
    await ledger.close()
  })

t.test('the ledger with a journal: rows the database refuses go to the buffer before they leave the journal',
  async t => {
    const dir = tempDir(t)
    const journal = await openJournal(dir, async () => {})
    const buffer = await createFileBuffer(join(dir, 'buffer'))
    let up = false
    const db = await openPglite('memory://', { migrations: await loadMigrations() })
    t.teardown(() => db.close())
    const ledger = createUsageLedger(db, {
      journal,
      buffer,
      behindMs: 1,
      exec: async sql => {
        if (!up) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })
        return db.exec(sql)
      }
    })
    await ledger.record(usageRow(id(1), 'success'))
    await ledger.settled()
    t.equal(buffer.depth(), 1, 'the row is in the buffer')
    t.equal(journal.open(), 0, 'and only then left the journal')
    up = true
    t.equal(await ledger.flush(), 1)
    t.same(await db.query('SELECT status FROM usage_ledger'), [{ status: 'success' }])
    await ledger.close()
  })

t.test('a row the journal cannot take is written to the database before record() resolves', async t => {
  const db = await openPglite('memory://', { migrations: await loadMigrations() })
  t.teardown(() => db.close())
  const errors: string[] = []
  const ledger = createUsageLedger(db, {
    ...STORED_WRITES,
    buffer: createMemoryBuffer(),
    journal: { append () { throw new Error('ENOSPC') }, open: () => 0, close () {} },
    exec: sql => db.exec(sql),
    log: { warn () {}, error (_details, message) { errors.push(message) } }
  })
  await ledger.record(usageRow(id(1), 'success'))
  t.same(await db.query('SELECT status FROM usage_ledger'), [{ status: 'success' }], 'stored when it resolves')
  t.match(errors, [/usage journal append failed/])
  await ledger.close()
})

t.test('SIGKILL with every row only in the journal: the next start replays them, each answered call once',
  async t => {
    const dataDir = tempDir(t)
    const child = await startServer(t, ['--import=tsx', 'src/server.ts'], {
      ...KEYS_ENV,
      DATA_DIR: dataDir,
      LOG_LEVEL: 'warn',
      // The longest window: no group commit happens before the kill, so the journal is all there is.
      USAGE_JOURNAL_WRITE_MS: '1000'
    })
    const calls = 5
    for (let i = 0; i < calls; i++) {
      const res = await fetch(`http://127.0.0.1:${child.port}/api/agents/travel/searchFlights`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': ADMIN_KEY, 'cache-control': 'no-cache' },
        body: JSON.stringify({ from: 'Cairo', to: `City ${i}`, date: '2030-05-01' })
      })
      t.equal(res.status, 200)
    }
    child.child.kill('SIGKILL')
    await new Promise(resolve => child.child.once('exit', resolve))
    const journaled = lines(join(dataDir, 'usage-buffer')).map(line => JSON.parse(line))
    t.comment(`journal at the kill: ${journaled.length} rows`)
    t.equal(journaled.filter(row => row.status === 'success').length, calls, 'every settlement was in the journal')

    const app = await buildApp(t, { db: null, env: { DATA_DIR: dataDir, USAGE_FLUSH_INTERVAL_MS: '50' } })
    const rows = async () => app.db.query<{ status: string, n: number }>(
      'SELECT status, count(*)::int AS n FROM usage_ledger GROUP BY status'
    )
    const deadline = Date.now() + 30_000
    while (app.usageLedger.depth() > 0 && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 50))
    t.same(await rows(), [{ status: 'success', n: calls }], 'one settled row per answered call, nothing pending')
    t.same(segments(join(dataDir, 'usage-buffer')).map(name => statSync(join(dataDir, 'usage-buffer', name)).size),
      [0], 'the old journal is gone; the new one is empty')
  })

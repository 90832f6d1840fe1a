// A new PGlite database comes from the cached initdb snapshot: the first one writes it (Postgres's files
// only, never this process's lock or buffer files), later ones — on disk or in memory — are unpacked from it
// and work as a database; a snapshot that cannot be used is dropped and rebuilt; '' turns the cache off.
// Opened with migrations, a new database gets them while it opens and the first such database writes a schema
// snapshot (initdb plus those migrations, no data), which later new databases are unpacked from instead; other
// migrations get a snapshot of their own, which replaces it. shared_buffers follows the setting.
import t from 'tap'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { openPglite } from '../../src/store/pglite.js'
import { migrate, type Migration } from '../../src/store/migrate.js'
import type { Database } from '../../src/store/database.js'
import { LOCK_FILE } from '../../src/store/data-dir-lock.js'
import { postgresFilesOnly, readSnapshot, schemaKey, snapshotPath } from '../../src/store/pglite-snapshot.js'

t.setTimeout(240_000)

/** The names in a tar (enough of the format for the test). */
function tarNames (tar: Buffer): string[] {
  const names: string[] = []
  for (let offset = 0; offset + 512 <= tar.length;) {
    const name = tar.subarray(offset, offset + 100).toString('latin1').replace(/\0.*$/s, '')
    if (!name) break
    names.push(name)
    const size = Number.parseInt(tar.subarray(offset + 124, offset + 136).toString('latin1').replace(/\0.*$/s, ''), 8)
    offset += 512 + Math.ceil(size / 512) * 512
  }
  return names
}

/** A one-file tar entry (ustar header, checksum not needed by our reader). */
function tarFile (name: string, body: string): Buffer {
  const header = Buffer.alloc(512)
  header.write(name, 0, 'latin1')
  header.write(Buffer.byteLength(body).toString(8).padStart(11, '0'), 124, 'latin1')
  header.write('0', 156, 'latin1')
  const data = Buffer.alloc(Math.ceil(Buffer.byteLength(body) / 512) * 512)
  data.write(body)
  return Buffer.concat([header, data])
}

t.test('the first new database writes the snapshot; the next ones are unpacked from it', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'amk-snapshot-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const cache = join(dir, 'cache')

  const first = await openPglite(join(dir, 'a'), { snapshotDir: cache })
  await first.close()
  t.ok(existsSync(snapshotPath(cache)), 'the snapshot is written')
  const names = tarNames(gunzipSync(await readFile(snapshotPath(cache))))
  t.ok(names.some(name => name.endsWith('PG_VERSION')), 'it holds the data directory')
  t.notOk(names.some(name => name.includes(LOCK_FILE) || name.includes('postmaster.pid')), 'no lock file')
  t.notOk(names.some(name => /usage|amk-/.test(name)), 'nothing of the app')

  const dataDir = join(dir, 'b')
  const second = await openPglite(dataDir, { snapshotDir: cache })
  t.teardown(() => second.close())
  t.ok(existsSync(join(dataDir, 'PG_VERSION')), 'unpacked into the new DATA_DIR')
  t.equal((await readFile(join(dataDir, LOCK_FILE), 'utf8')).trim(), String(process.pid), 'the lock is this process\'s')
  await second.exec('CREATE TABLE kept (id int PRIMARY KEY, note text)')
  await second.query('INSERT INTO kept VALUES (1, $1)', ['from a snapshot'])
  t.same(await second.query('SELECT note FROM kept'), [{ note: 'from a snapshot' }])
  await second.close()

  const reopened = await openPglite(dataDir, { snapshotDir: cache })
  t.same(await reopened.query('SELECT note FROM kept'), [{ note: 'from a snapshot' }], 'the data survives a restart')
  await reopened.close()

  const memory = await openPglite('memory://', { snapshotDir: cache })
  t.same(await memory.query('SELECT count(*)::int AS n FROM pg_tables WHERE tablename = $1', ['kept']), [{ n: 0 }],
    'an in-memory database from the snapshot is new')
  await memory.close()
})

t.test('a snapshot that cannot be used is dropped and rebuilt; an empty setting turns the cache off', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'amk-snapshot-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const cache = join(dir, 'cache')
  const broken = await openPglite('memory://', { snapshotDir: cache })
  await broken.close()
  await writeFile(snapshotPath(cache), 'not a gzip file')
  t.equal(await readSnapshot(cache), null, 'a corrupt file is not used')

  const db = await openPglite(join(dir, 'a'), { snapshotDir: cache })
  t.same(await db.query('SELECT 1 AS one'), [{ one: 1 }], 'initdb instead')
  await db.close()
  t.not(await readSnapshot(cache), null, 'and a good snapshot is written again')

  const off = await openPglite(join(dir, 'b'), { snapshotDir: '' })
  await off.close()
  t.same((await readdir(cache)).filter(name => name.endsWith('.tmp')), [], 'no temporary file left')
})

t.test('a new database gets its migrations while it opens, and later ones come from the schema snapshot', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'amk-snapshot-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const cache = join(dir, 'cache')
  const first: Migration[] = [{ version: '001_notes', sql: 'CREATE TABLE notes (id int PRIMARY KEY, body text);' }]
  const tables = (db: Database) =>
    db.query<{ tablename: string }>("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")

  const made = await openPglite(join(dir, 'a'), { snapshotDir: cache, migrations: first })
  t.same(made.created, { from: 'initdb', applied: ['001_notes'] }, 'initdb, then the migrations')
  await made.query('INSERT INTO notes VALUES (1, $1)', ['written after the migrations'])
  await made.close()
  t.ok(existsSync(snapshotPath(cache)), 'the initdb snapshot is written')
  t.ok(existsSync(snapshotPath(cache, schemaKey(first))), 'and the schema snapshot')

  const second = await openPglite(join(dir, 'b'), { snapshotDir: cache, migrations: first })
  t.teardown(() => second.close())
  t.same(second.created, { from: 'schema snapshot', applied: [] }, 'unpacked with its migrations')
  t.same(await tables(second), [{ tablename: 'notes' }, { tablename: 'schema_migrations' }])
  t.same(await second.query('SELECT count(*)::int AS n FROM notes'), [{ n: 0 }], 'no data of the first database')
  t.same(await migrate(second, first), [], 'nothing left to apply')
  await second.close()
  const memory = await openPglite('memory://', { snapshotDir: cache, migrations: first })
  t.same(memory.created?.from, 'schema snapshot', 'in memory too')
  await memory.close()
  const reopened = await openPglite(join(dir, 'b'), { snapshotDir: cache, migrations: first })
  t.equal(reopened.created, undefined, 'an existing database is not new')
  await reopened.close()

  const plain = await openPglite('memory://', { snapshotDir: cache })
  t.same(plain.created, { from: 'snapshot', applied: [] }, 'without migrations: the initdb snapshot')
  t.same(await tables(plain), [], 'and nothing else')
  await plain.close()

  // Another set of migrations: the initdb snapshot and every migration, then a schema snapshot of its own.
  const next: Migration[] = [...first, { version: '002_tags', sql: 'CREATE TABLE tags (name text PRIMARY KEY);' }]
  const upgraded = await openPglite(join(dir, 'c'), { snapshotDir: cache, migrations: next })
  t.same(upgraded.created, { from: 'snapshot', applied: ['001_notes', '002_tags'] })
  await upgraded.close()
  t.same((await readdir(cache)).sort(), [snapshotPath(cache), snapshotPath(cache, schemaKey(next))]
    .map(path => path.slice(cache.length + 1)).sort(), 'the other schema snapshot is gone')

  // An unreadable schema snapshot: the initdb one and the migrations instead, and it is written again.
  await writeFile(snapshotPath(cache, schemaKey(next)), 'not a gzip file')
  const again = await openPglite('memory://', { snapshotDir: cache, migrations: next })
  t.same(again.created, { from: 'snapshot', applied: ['001_notes', '002_tags'] })
  await again.close()
  t.not(await readSnapshot(cache, schemaKey(next)), null, 'rebuilt')
})

t.test('a snapshot directory that cannot be written leaves a new database working, with its migrations', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'amk-snapshot-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const notADirectory = join(dir, 'file')
  await writeFile(notADirectory, 'a file where the cache directory would be')
  const migrations: Migration[] = [{ version: '001_notes', sql: 'CREATE TABLE notes (id int PRIMARY KEY);' }]
  const db = await openPglite(join(dir, 'data'), { snapshotDir: notADirectory, migrations })
  t.teardown(() => db.close())
  t.same(db.created, { from: 'initdb', applied: ['001_notes'] })
  t.same(await db.query('SELECT count(*)::int AS n FROM notes'), [{ n: 0 }])
})

t.test('only Postgres\'s files are kept from a dumped directory', async t => {
  const tar = Buffer.concat([
    tarFile('/PG_VERSION', '17\n'),
    tarFile('/pg_hba.conf', 'local all all trust\n'),
    tarFile(`/${LOCK_FILE}`, '123\n'),
    tarFile('/usage-buffer/pending.jsonl', '{}\n'),
    tarFile('/postmaster.pid', '1\n'),
    Buffer.alloc(1024)
  ])
  t.same(tarNames(postgresFilesOnly(tar)), ['/PG_VERSION', '/pg_hba.conf'])
})

t.test('shared_buffers follows the setting (16MB by default)', async t => {
  const small = await openPglite('memory://')
  t.same(await small.query('SHOW shared_buffers'), [{ shared_buffers: '16MB' }])
  await small.close()
  const larger = await openPglite('memory://', { sharedBuffers: '32MB' })
  t.same(await larger.query('SHOW shared_buffers'), [{ shared_buffers: '32MB' }])
  await larger.close()
})

// Pre-initialised PGlite data directories, cached as gzipped tarballs per PGlite version: a new database
// (an empty DATA_DIR, or memory://) is unpacked from one instead of running initdb, which takes seconds and
// doubles the process's memory while it runs. Two kinds, by key: the base snapshot holds only what initdb
// made (written by the first database made without one), and a schema snapshot holds that plus one set of
// migrations (keyed by a hash of them; written by the first database those were applied to while it was new),
// so a new database also skips the migrations (about 0.4 s of a first start). PGLITE_SNAPSHOT_DIR sets the
// directory; empty turns it off.
import { createHash } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { mkdir, readFile, readdir, rename, unlink, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { gunzipSync, gzipSync } from 'node:zlib'

/** The default cache: wiped with node_modules, so it never outlives the PGlite that wrote it. */
export const DEFAULT_SNAPSHOT_DIR = 'node_modules/.cache/amrikyy-agent-api/pglite'

/** Bumped whenever what a snapshot holds changes, so an older file is never read. */
const FORMAT = 1

/** The first path segment of every file initdb makes; anything else in a data dir (our lock file…) stays out. */
const POSTGRES_ENTRY = /^(PG_VERSION|base|global|pg_[a-z_]+|pg_(hba|ident)\.conf|postgresql(\.auto)?\.conf)$/

const REQUIRED = ['PG_VERSION', 'pg_hba.conf', 'pg_ident.conf', 'postgresql.conf', 'global/pg_control']

let version: string | undefined
function pgliteVersion (): string {
  if (version === undefined) {
    const require = createRequire(import.meta.url)
    const main = require.resolve('@electric-sql/pglite')
    const manifest = join(main.slice(0, main.lastIndexOf('/dist/')), 'package.json')
    version = String(JSON.parse(readFileSync(manifest, 'utf8')).version)
  }
  return version
}

/** The key of the schema snapshot for these migrations (their names and SQL, in order). */
export function schemaKey (migrations: ReadonlyArray<{ version: string, sql: string }>): string {
  const hash = createHash('sha256')
  for (const migration of migrations) hash.update(`${migration.version}\0${migration.sql}\0`)
  return hash.digest('hex').slice(0, 16)
}

const SCHEMA_SNAPSHOT = /^pglite-.+-v\d+-[0-9a-f]{16}\.tar\.gz$/

/** The base snapshot's file, or with a key the schema snapshot's. */
export function snapshotPath (dir: string, key?: string): string {
  return join(dir, `pglite-${pgliteVersion()}-v${FORMAT}${key ? `-${key}` : ''}.tar.gz`)
}

/** A cached snapshot as an uncompressed tar, or null when there is none (or it cannot be read). */
export async function readSnapshot (dir: string, key?: string): Promise<Buffer | null> {
  try {
    const tar = gunzipSync(await readFile(snapshotPath(dir, key)))
    return complete(tar) ? tar : null
  } catch {
    return null
  }
}

/** Drops a snapshot that failed to load, so the next start does not try it again. */
export async function discardSnapshot (dir: string, key?: string): Promise<void> {
  await unlink(snapshotPath(dir, key)).catch(() => {})
}

interface TarEntry { segments: string[], type: string, start: number, end: number, size: number }

/** The entries of a tar (names may start with '/' or with the dumped directory's own name). */
function * entries (tar: Buffer): Generator<TarEntry> {
  let offset = 0
  while (offset + 512 <= tar.length) {
    const header = tar.subarray(offset, offset + 512)
    if (header.every(byte => byte === 0)) return
    const field = (start: number, length: number) =>
      header.subarray(start, start + length).toString('latin1').replace(/\0.*$/s, '')
    const name = [field(345, 155), field(0, 100)].filter(Boolean).join('/')
    const size = Number.parseInt(field(124, 12).trim() || '0', 8)
    const end = offset + 512 + Math.ceil(size / 512) * 512
    yield { segments: name.split('/').filter(Boolean), type: field(156, 1) || '0', start: offset, end, size }
    offset = end
  }
}

const isPostgres = (entry: TarEntry) => POSTGRES_ENTRY.test(entry.segments[0] ?? '')

/** Keeps only initdb's files of a dumped data dir: a lock or buffer file of this process must not be copied. */
export function postgresFilesOnly (tar: Uint8Array): Buffer {
  const source = Buffer.from(tar.buffer, tar.byteOffset, tar.byteLength)
  const kept = [...entries(source)].filter(isPostgres).map(entry => source.subarray(entry.start, entry.end))
  return Buffer.concat([...kept, Buffer.alloc(1024)])
}

/**
 * Unpacks the snapshot into an empty data directory with plain file writes, so PGlite then opens it as an
 * existing database: cheaper in time and memory than its own loadDataDir, which copies through its FS layer.
 */
export function unpackSnapshot (tar: Buffer, dataDir: string): void {
  // Synchronous writes: about a thousand small files, before the server listens; twice as fast as awaiting each.
  const made = new Set<string>()
  const directory = (path: string) => {
    if (!made.has(path)) mkdirSync(path, { recursive: true, mode: 0o700 })
    made.add(path)
  }
  for (const entry of entries(tar)) {
    if (!isPostgres(entry) || entry.segments.some(segment => segment === '..' || segment === '.')) continue
    const path = join(dataDir, ...entry.segments)
    if (entry.type === '5') directory(path)
    else if (entry.type === '0') {
      directory(dirname(path))
      writeFileSync(path, tar.subarray(entry.start + 512, entry.start + 512 + entry.size), { mode: 0o600 })
    }
  }
}

/** Whether a tar holds a whole data directory (the files Postgres cannot start without). */
function complete (tar: Buffer): boolean {
  const names = new Set([...entries(tar)].map(entry => entry.segments.slice(-2).join('/')))
  return REQUIRED.every(name => names.has(name) || names.has(name.split('/').pop()!))
}

/**
 * Writes a snapshot atomically (temporary file, then rename); a failure (read-only dir) is ignored. A schema
 * snapshot replaces the schema snapshots of other migrations (and PGlite versions): only the current one is read.
 */
export async function writeSnapshot (dir: string, tar: Uint8Array, key?: string): Promise<boolean> {
  const path = snapshotPath(dir, key)
  const staging = `${path}.${process.pid}.tmp`
  try {
    await mkdir(dir, { recursive: true })
    await writeFile(staging, gzipSync(postgresFilesOnly(tar), { level: 1 }))
    await rename(staging, path)
  } catch {
    await unlink(staging).catch(() => {})
    return false
  }
  if (key) {
    const stale = (await readdir(dir)).filter(name => SCHEMA_SNAPSHOT.test(name) && join(dir, name) !== path)
    await Promise.all(stale.map(name => unlink(join(dir, name)).catch(() => {})))
  }
  return true
}

// The usage journal: how 'durable' ledger writes stay durable on the embedded PGlite without a database
// statement per write. A row is appended to a JSON-lines file beside the database (DATA_DIR/usage-buffer)
// with one synchronous write before record() resolves, so it is on disk before the provider call (a
// reservation) and before the reply (a settlement), and the ledger then writes the rows of about
// USAGE_WRITE_BEHIND_MS in one INSERT, as 'behind' mode does. A row leaves the journal once that INSERT (or
// the durable buffer) holds it; a crash leaves the rest, which the next start hands to the buffer to replay.
// Durability is the database's own: PGlite writes its files through NodeFS without fsync, so either survives
// the process, not the machine. Only for PGlite in a DATA_DIR: in memory there is nothing to survive, and on
// PostgreSQL the reservation must be in the shared database, where other replicas' sweeps can see it.
import { closeSync, ftruncateSync, openSync, unlinkSync, writeSync } from 'node:fs'
import { mkdir, readdir, readFile, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { parseLines } from './usage-buffer.js'

export interface UsageJournal {
  /**
   * Appends a row (written to the file before it returns; throws when the file cannot take it). Returns its
   * release, to call once the database or the buffer holds the row; a second call does nothing.
   */
  append(row: object): () => void
  /** Rows appended and not yet released. */
  open(): number
  /** Closes the file; unreleased rows stay in it for the next start. */
  close(): void
}

/** A segment is replaced by a new one past this size; it is deleted once every row in it is released. */
const SEGMENT_BYTES = 1 << 20
const SEGMENT = /^journal-\d+-\d+\.jsonl$/

interface Segment { path: string, fd: number, bytes: number, unreleased: number }

/**
 * Opens the journal in `dir`. The rows an earlier process left in it go to `adopt` (the durable buffer's push)
 * first, and their files are deleted only once it took them.
 */
export async function openUsageJournal (
  dir: string,
  adopt: (rows: unknown[]) => Promise<void>
): Promise<UsageJournal> {
  await mkdir(dir, { recursive: true })
  for (const name of (await readdir(dir)).filter(name => SEGMENT.test(name)).sort()) {
    const rows = parseLines(await readFile(join(dir, name), 'utf8'))
    if (rows.length > 0) await adopt(rows)
    await unlink(join(dir, name))
  }
  let sequence = 0
  const segments = new Set<Segment>()
  const start = (): Segment => {
    const path = join(dir, `journal-${Date.now()}-${sequence++}.jsonl`)
    const segment = { path, fd: openSync(path, 'a'), bytes: 0, unreleased: 0 }
    segments.add(segment)
    return segment
  }
  // A file the journal cannot shorten or delete only keeps rows the database already holds: the next start
  // replays them again, and the upserts make that a no-op. So releasing never throws.
  const remove = (segment: Segment) => {
    segments.delete(segment)
    try {
      closeSync(segment.fd)
      unlinkSync(segment.path)
    } catch {}
  }
  let current = start()
  let closed = false
  return {
    append (row) {
      if (closed) throw new Error('usage journal: closed')
      const line = JSON.stringify(row) + '\n'
      const bytes = Buffer.byteLength(line)
      const segment = current
      // A short write (a full disk) leaves a torn line, which the replay skips; the row then goes elsewhere.
      if (writeSync(segment.fd, line) !== bytes) throw new Error('usage journal: short write')
      segment.bytes += bytes
      segment.unreleased++
      if (segment.bytes >= SEGMENT_BYTES) current = start()
      let released = false
      return () => {
        if (released || closed) return
        released = true
        if (--segment.unreleased > 0) return
        if (segment !== current) return remove(segment)
        if (segment.bytes === 0) return
        try {
          ftruncateSync(segment.fd, 0) // appends (O_APPEND) start again at 0
          segment.bytes = 0
        } catch {}
      }
    },
    open () {
      let rows = 0
      for (const segment of segments) rows += segment.unreleased
      return rows
    },
    close () {
      if (closed) return
      closed = true
      for (const segment of segments) {
        if (segment.unreleased === 0) remove(segment)
        else closeSync(segment.fd)
      }
      segments.clear()
    }
  }
}

// A journal of writes made behind the database on the embedded PGlite: how a write stays durable without a
// database statement before the caller moves on. An entry is appended to a JSON-lines file beside the
// database with one synchronous write before append() returns, and released once the database (or another
// durable holder) has it; a crash leaves the unreleased entries, which the next start hands to `adopt`.
// Durability is the database's own: PGlite writes its files through NodeFS without fsync, so either survives
// the process, not the machine. Used for PGlite in a DATA_DIR only (in memory there is nothing to survive; on
// PostgreSQL other replicas read the shared database, so a write must be there before anyone is answered):
// - usage-ledger rows of 'durable' mode (DATA_DIR/usage-buffer; src/store/usage-ledger.ts), written in group
//   commits, a reservation on disk before the provider call and a settlement before the reply;
// - workflow outcomes (DATA_DIR/run-outcomes; src/coordinator/outcome-outbox.ts), on disk before the run's
//   caller is answered and written to the run's row just after; and, in the same journal, the starts of a run's
//   later steps (src/coordinator/run-executor.ts), on disk before their events go out.
import { closeSync, ftruncateSync, openSync, unlinkSync, writeSync } from 'node:fs'
import { mkdir, readdir, readFile, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { parseLines } from './usage-buffer.js'

export interface Journal {
  /**
   * Appends an entry (written to the file before it returns; throws when the file cannot take it). Returns its
   * release, to call once the database (or another durable holder) has it; a second call does nothing.
   */
  append(entry: object): () => void
  /** Entries appended and not yet released. */
  open(): number
  /** Closes the file; unreleased entries stay in it for the next start. */
  close(): void
}

/** A segment is replaced by a new one past this size; it is deleted once every entry in it is released. */
const SEGMENT_BYTES = 1 << 20
const SEGMENT = /^journal-\d+-\d+\.jsonl$/

interface Segment { path: string, fd: number, bytes: number, unreleased: number }

/**
 * Opens the journal in `dir`. The entries an earlier process left in it go to `adopt` first (the usage
 * ledger's durable buffer, or the run store), and their files are deleted only once it took them.
 */
export async function openJournal (
  dir: string,
  adopt: (entries: unknown[]) => Promise<void>
): Promise<Journal> {
  await mkdir(dir, { recursive: true })
  for (const name of (await readdir(dir)).filter(name => SEGMENT.test(name)).sort()) {
    const entries = parseLines(await readFile(join(dir, name), 'utf8'))
    if (entries.length > 0) await adopt(entries)
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
  // A file the journal cannot shorten or delete only keeps entries the database already holds: the next
  // start replays them again, and those writes are no-ops (usage rows are upserts; a run's outcome is stored
  // only over a running or interrupted row). So releasing never throws.
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
    append (entry) {
      if (closed) throw new Error('journal: closed')
      const line = JSON.stringify(entry) + '\n'
      const bytes = Buffer.byteLength(line)
      const segment = current
      // A short write (a full disk) leaves a torn line, which the replay skips; the caller then writes the entry
      // without the journal.
      if (writeSync(segment.fd, line) !== bytes) throw new Error('journal: short write')
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
      let entries = 0
      for (const segment of segments) entries += segment.unreleased
      return entries
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

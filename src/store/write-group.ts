// Group commit for PGlite's writes (Database.write): a write sent while another is running waits for it, then
// every write that waited goes in one exec, one simple-query message. PGlite's cost per exec (the message to its
// thread and back, the protocol round, the commit's file writes) is most of a small write's: a run's progress
// update (a 3 KB step) on a data directory cost 470–570 µs of CPU alone, 350–380 each in threes, 180–190 in
// sixes (7 Dec 2026). Nothing waits longer than it did: the first write goes at once, and the others would have
// waited for the running one anyway (PGlite runs one statement at a time).
// The statements of one message are one implicit transaction, so when a grouped exec fails, each of its writes
// runs again alone (none of the group was applied), and each caller gets its own outcome.

/** Runs statements in one exec; answers each statement's changed-row count, in order. */
export type ExecEach = (sql: string) => Promise<number[]>

/** Most writes in one exec, and most characters: bounds one message (a run's outcome can be tens of KB). */
const MAX_WRITES = 64
const MAX_CHARS = 1 << 20

interface Waiting { sql: string, resolve(count: number): void, reject(error: unknown): void }

/**
 * `write(sql)` for single statements whose rows nobody reads: answers the rows the statement changed. A
 * statement with several in it (`a; b`) must go through exec(): its counts would be taken for its neighbours'.
 */
export function groupWrites (execEach: ExecEach): (sql: string) => Promise<number> {
  const waiting: Waiting[] = []
  let running = false

  const alone = (write: Waiting) => execEach(write.sql).then(counts => write.resolve(counts.at(-1) ?? 0), write.reject)

  /** The writes at the head of the queue that fit one exec. */
  function nextGroup (): Waiting[] {
    let chars = 0
    let n = 0
    while (n < waiting.length && n < MAX_WRITES && (n === 0 || chars + waiting[n].sql.length <= MAX_CHARS)) {
      chars += waiting[n++].sql.length
    }
    return waiting.splice(0, n)
  }

  async function run () {
    running = true
    try {
      while (waiting.length > 0) {
        const group = nextGroup()
        if (group.length === 1) {
          await alone(group[0])
          continue
        }
        let counts: number[]
        try {
          counts = await execEach(group.map(write => write.sql).join('\n;\n')) // a newline ends a trailing -- comment
        } catch {
          // Rolled back as a whole: each runs alone, so only a bad one fails, with its own error.
          for (const write of group) await alone(write)
          continue
        }
        group.forEach((write, i) => write.resolve(counts[i] ?? 0))
      }
    } finally {
      running = false // in the same turn as the last look at the queue, so no write is left waiting
    }
  }

  return sql => new Promise<number>((resolve, reject) => {
    waiting.push({ sql, resolve, reject })
    if (!running) run().catch(() => {}) // never rejects: each write settles its own promise
  })
}

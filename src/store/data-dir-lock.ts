// One process per embedded database: PGlite keeps its pages in this process's memory, so a second
// process on the same DATA_DIR would see only its own writes and overwrite the other's on close. The
// lock is a file in DATA_DIR holding the owner's pid, created atomically; a lock whose pid is no
// longer a running node process (a crash, a container restart) is taken over.
import { link, readFile, rename, unlink, writeFile } from 'node:fs/promises'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

export const LOCK_FILE = 'amk-server.lock'

export class DataDirLockedError extends Error {
  constructor (readonly dataDir: string, readonly pid: number) {
    super(`DATA_DIR ${dataDir} is in use by another process (pid ${pid}). The embedded database (PGlite) serves one ` +
      'process only: stop that process, give this one its own DATA_DIR, or run every process against one PostgreSQL ' +
      'server with DATABASE_URL=postgres://…')
    this.name = 'DataDirLockedError'
  }
}

/** Whether pid is a live node process other than this one (a reused pid of another program does not count). */
function heldBy (pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false
  try {
    process.kill(pid, 0)
  } catch (error) {
    if (Reflect.get(Object(error), 'code') !== 'EPERM') return false
  }
  try {
    return /node/.test(readFileSync(`/proc/${pid}/cmdline`, 'utf8'))
  } catch {
    return true // no /proc (not Linux): trust the pid
  }
}

const readPid = async (path: string) => Number.parseInt(await readFile(path, 'utf8').catch(() => ''), 10)

/** Takes the lock (or throws DataDirLockedError); resolves with its release. */
export async function lockDataDir (dataDir: string): Promise<() => Promise<void>> {
  const path = join(dataDir, LOCK_FILE)
  const mine = `${path}.${process.pid}`
  await writeFile(mine, `${process.pid}\n`)
  try {
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        await link(mine, path) // atomic: fails when the lock exists
        return async () => { if (await readPid(path) === process.pid) await unlink(path).catch(() => {}) }
      } catch (error) {
        if (Reflect.get(Object(error), 'code') !== 'EEXIST') throw error
      }
      const owner = await readPid(path)
      if (heldBy(owner)) throw new DataDirLockedError(dataDir, owner)
      // Stale: move it aside, and put it back if another process took the lock in between.
      const aside = `${path}.stale.${process.pid}`
      await rename(path, aside).catch(() => {})
      const moved = await readPid(aside)
      if (moved !== owner && heldBy(moved)) await link(aside, path).catch(() => {})
      await unlink(aside).catch(() => {})
    }
    throw new Error(`could not take the lock ${path}`)
  } finally {
    await unlink(mine).catch(() => {})
  }
}

// Shared pieces of the container tests (docker.test.ts, compose.test.ts): running a command from the
// project root without throwing, and polling until a probe answers.
import { execFile } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))

export interface Run { code: number, stdout: string, stderr: string }

/** Runs `file` in the project root; resolves with its exit code and trimmed output, never rejects. */
export function run (file: string, args: string[], env: Record<string, string> = {}, timeout = 120_000): Promise<Run> {
  return new Promise(resolve => {
    execFile(
      file,
      args,
      { cwd: ROOT, env: { ...process.env, ...env }, timeout, maxBuffer: 64 << 20 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1
        resolve({ code, stdout: stdout.trim(), stderr: stderr.trim() })
      }
    )
  })
}

/** The first defined value `probe` gives within `ms` (polled every `everyMs`); throws naming `what` after. */
export async function until<T> (
  what: string, probe: () => Promise<T | undefined>, ms: number, everyMs = 500
): Promise<T> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    const value = await probe().catch(() => undefined)
    if (value !== undefined) return value
    await sleep(everyMs)
  }
  throw new Error(`${what}: not within ${ms} ms`)
}

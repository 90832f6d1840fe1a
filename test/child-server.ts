// Runs the real entry point as a child process (for the start, shutdown and build tests): picks a free
// port, passes a clean environment (no REDIS_URL, DATABASE_URL or keys) and waits for the banner.
import type { Test } from 'tap'
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { freePort } from './support.js'

const ROOT = new URL('..', import.meta.url).pathname

export interface RunningServer {
  child: ChildProcessWithoutNullStreams
  port: number
  output: () => string
  /** Sends SIGTERM; resolves with the exit code and how long the exit took. */
  stop(): Promise<{ code: number | null, signal: NodeJS.Signals | null, ms: number }>
}

/** Starts `node <args>` in the repository root and resolves once the banner is printed. */
export async function startServer (t: Test, args: string[], env: Record<string, string>): Promise<RunningServer> {
  const port = await freePort()
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', PORT: String(port), ...env },
    stdio: ['pipe', 'pipe', 'pipe']
  })
  let output = ''
  child.stdout.on('data', chunk => { output += chunk })
  child.stderr.on('data', chunk => { output += chunk })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>(resolve =>
    child.once('exit', (code, signal) => resolve({ code, signal }))
  )
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no banner within 120 s:\n${output}`)), 120_000)
    const check = () => {
      if (output.includes(`listening on http://localhost:${port}`)) {
        clearTimeout(timer)
        resolve()
      }
    }
    child.stdout.on('data', check)
    exited.then(() => { clearTimeout(timer); reject(new Error(`exited before listening:\n${output}`)) })
  })
  return {
    child,
    port,
    output: () => output,
    async stop () {
      const started = Date.now()
      child.kill('SIGTERM')
      const result = await exited
      return { ...result, ms: Date.now() - started }
    }
  }
}

// Private PostgreSQL and Redis servers for fault tests: each on its own free port and data directory,
// with stop/start (a clean or crash stop, then the same port and data again), freeze/thaw (SIGSTOP and
// SIGCONT of every server process, i.e. a hung server whose sockets stay open) and close (stop and delete).
// PostgreSQL refuses to run as root, so as root its binaries run as the `postgres` user via runuser.
// Servers left running when the test process exits are killed (thawed first), so none is orphaned.
// Missing server binaries skip a fault test with the reason, except under CI=true, where they fail it.
import { randomBytes } from 'node:crypto'
import { spawn, execFile, type ChildProcess } from 'node:child_process'
import { mkdtempSync, chownSync, rmSync, readFileSync, readdirSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import net from 'node:net'
import { promisify } from 'node:util'
import pg from 'pg'
import { freePort, which } from '../support.js'

const run = promisify(execFile)
export const PG_BIN = process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin'
const isRoot = process.getuid?.() === 0

/** `false` when PostgreSQL's server binaries and redis-server are installed, else the skip reason (CI: fails). */
export function needsServers (): false | string {
  const missing = [join(PG_BIN, 'initdb'), join(PG_BIN, 'pg_ctl'), 'redis-server'].filter(bin => !which(bin))
  if (missing.length === 0) return false
  const reason = `fault servers not installed: ${missing.join(', ')} (set PG_BIN)`
  if (process.env.CI === 'true') throw new Error(`${reason} (CI=true requires them)`)
  return `SKIPPED: ${reason}`
}

export interface FaultServer {
  url: string
  port: number
  /** Stops the server: 'clean' shuts down (closing connections), 'crash' kills it (SIGKILL / immediate). */
  stop (mode?: 'clean' | 'crash'): Promise<void>
  /** Starts it again on the same port with the same data. */
  start (): Promise<void>
  /** SIGSTOP every server process: connections stay open, nothing answers. */
  freeze (): void
  /** SIGCONT every server process. */
  thaw (): void
  /** Stops the server for good and removes its directory. */
  close (): Promise<void>
}

/** The pid and every descendant pid (read from /proc), parents first. */
export function processTree (pid: number): number[] {
  const children = new Map<number, number[]>()
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)])
    } catch {}
  }
  const tree = [pid]
  for (let i = 0; i < tree.length; i++) tree.push(...(children.get(tree[i]) ?? []))
  return tree
}

function signalTree (pid: number | null, signal: NodeJS.Signals): void {
  if (pid === null) return
  for (const each of processTree(pid)) { try { process.kill(each, signal) } catch {} }
}

function killOnExit (pidOf: () => number | null): () => void {
  const handler = () => { const pid = pidOf(); signalTree(pid, 'SIGCONT'); signalTree(pid, 'SIGKILL') }
  process.once('exit', handler)
  return () => process.off('exit', handler)
}

async function asPostgres (command: string, args: string[]): Promise<void> {
  const [file, argv] = isRoot
    ? ['runuser', ['-u', 'postgres', '--', join(PG_BIN, command), ...args]]
    : [join(PG_BIN, command), args]
  await run(file, argv, { timeout: 120_000 })
}

/** A private PostgreSQL 15 (trust auth, fsync off) on a free port; `url` points at database `postgres`. */
export async function startPostgres (): Promise<FaultServer> {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'amk-pg-'))
  const data = join(dir, 'data')
  if (isRoot) {
    const { stdout } = await run('id', ['-u', 'postgres'])
    chownSync(dir, Number(stdout.trim()), Number(stdout.trim()))
  }
  await asPostgres('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '-N', '--no-instructions'])
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off`
  const postmasterPid = (): number | null => {
    try { return Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]) } catch { return null }
  }
  let running = false
  const server: FaultServer = {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    async start () {
      await asPostgres('pg_ctl', [
        '-D',
        data,
        '-o',
        options,
        '-l',
        join(dir, 'postgres.log'),
        '-w',
        '-t',
        '60',
        'start'
      ])
      running = true
    },
    async stop (mode = 'clean') {
      if (!running) return
      server.thaw()
      await asPostgres('pg_ctl', ['-D', data, '-m', mode === 'clean' ? 'fast' : 'immediate', '-w', '-t', '60', 'stop'])
      running = false
    },
    freeze () { signalTree(postmasterPid(), 'SIGSTOP') },
    thaw () { signalTree(postmasterPid(), 'SIGCONT') },
    async close () {
      await server.stop('crash').catch(() => signalTree(postmasterPid(), 'SIGKILL'))
      forget()
      rmSync(dir, { recursive: true, force: true })
    }
  }
  const forget = killOnExit(() => (running ? postmasterPid() : null))
  await server.start()
  return server
}

/** A new database on a private PostgreSQL (one per test, so row counts are the test's own); its URL. */
export async function createDatabase (server: FaultServer): Promise<string> {
  const name = `amk_fault_${randomBytes(4).toString('hex')}`
  const admin = new pg.Client({ connectionString: server.url })
  await admin.connect()
  try {
    await admin.query(`CREATE DATABASE ${name}`)
  } finally {
    await admin.end()
  }
  return server.url.replace(/\/postgres$/, `/${name}`)
}

async function redisAnswers (port: number): Promise<boolean> {
  return new Promise(resolve => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => socket.write('PING\r\n'))
    socket.setTimeout(500, () => { socket.destroy(); resolve(false) })
    socket.on('data', chunk => { socket.destroy(); resolve(String(chunk).startsWith('+PONG')) })
    socket.on('error', () => resolve(false))
  })
}

/** A private redis-server (no persistence) on a free port. */
export async function startRedis (): Promise<FaultServer> {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'amk-redis-'))
  let child: ChildProcess | null = null
  const pid = () => (child !== null && child.exitCode === null && child.signalCode === null ? child.pid ?? null : null)
  const server: FaultServer = {
    url: `redis://127.0.0.1:${port}`,
    port,
    async start () {
      child = spawn(
        'redis-server',
        ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
        { stdio: 'ignore' }
      )
      const deadline = Date.now() + 30_000
      while (!(await redisAnswers(port))) {
        if (Date.now() > deadline || pid() === null) throw new Error(`redis-server did not start on port ${port}`)
        await new Promise(resolve => setTimeout(resolve, 50))
      }
    },
    async stop (mode = 'clean') {
      const current = child
      if (current === null || pid() === null) return
      const exited = new Promise(resolve => current.once('exit', resolve))
      server.thaw()
      current.kill(mode === 'clean' ? 'SIGTERM' : 'SIGKILL')
      await exited
    },
    freeze () { signalTree(pid(), 'SIGSTOP') },
    thaw () { signalTree(pid(), 'SIGCONT') },
    async close () {
      await server.stop('crash')
      forget()
      if (existsSync(dir)) rmSync(dir, { recursive: true, force: true })
    }
  }
  const forget = killOnExit(pid)
  await server.start()
  return server
}

/** A trip-package workflow input (three agent steps). */
export const TRIP = {
  origin: 'New York',
  destination: 'Lisbon',
  departureDate: '2030-05-01',
  returnDate: '2030-05-05',
  travelers: 2
}

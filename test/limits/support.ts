// Shared by the rate-limit and budget tests: an app built with extra test routes (registered after the
// app, like real route plugins), a redis-server of our own that a test can stop and start on the same
// port, and a concurrent HTTP burst over real sockets.
import type { Test } from 'tap'
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import { spawn, type ChildProcess } from 'node:child_process'
import net from 'node:net'
import { build, freePort, type BuildOptions } from '../support.js'

export interface LimitAppOptions extends Pick<BuildOptions, 'env' | 'logs' | 'appOptions'> {
  routes?: FastifyPluginAsync
}

/** Builds the app (shared PGlite), then registers `routes` as a route plugin would be; closed after the test. */
export function buildWithRoutes (t: Test, options: LimitAppOptions = {}): Promise<FastifyInstance> {
  const { routes, ...rest } = options
  return build(t, { ...rest, before: routes && (server => server.register(routes)) })
}

async function waitFor (check: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  throw new Error(`timed out waiting for ${what}`)
}

function answers (port: number): Promise<boolean> {
  return new Promise(resolve => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => {
      socket.write('PING\r\n')
    })
    socket.once('data', (data) => { socket.destroy(); resolve(String(data).startsWith('+PONG')) })
    socket.on('error', () => resolve(false))
  })
}

/** A redis-server of our own (nothing persisted) that can be killed and restarted on the same port. */
export async function ownRedis (
  t: Test
): Promise<{
  url: string
  port: number
  start(): Promise<void>
  kill(): Promise<void>
  signal(name: NodeJS.Signals): void
}> {
  const port = await freePort()
  let child: ChildProcess | null = null
  const handle = {
    url: `redis://127.0.0.1:${port}`,
    port,
    async start () {
      child = spawn(
        'redis-server',
        ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
        { stdio: 'ignore' }
      )
      await waitFor(() => answers(port), `redis-server on ${port}`)
    },
    /** SIGSTOP pauses it (connections stay open, nothing answers); SIGCONT resumes it. */
    signal (name: NodeJS.Signals) {
      if (child && child.exitCode === null) child.kill(name)
    },
    async kill () {
      const running = child
      if (!running || running.exitCode !== null) return
      const exited = new Promise(resolve => running.once('exit', resolve))
      running.kill('SIGKILL')
      await exited
      child = null
    }
  }
  t.teardown(() => handle.kill())
  await handle.start()
  return handle
}

export interface BurstResult { status: number, headers: Headers, body: unknown }

/** Sends `count` requests at once over real connections (round-robin across `urls`). */
export async function burst (urls: string[], count: number, init: RequestInit = {}): Promise<BurstResult[]> {
  return Promise.all(Array.from({ length: count }, async (_, i) => {
    const res = await fetch(urls[i % urls.length], init)
    const text = await res.text()
    return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : null }
  }))
}

export function countStatus (results: Array<{ status: number }>, status: number): number {
  return results.filter(r => r.status === status).length
}

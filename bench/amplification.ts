// The amplification attack of issue 11, against the real server in a child process (production mode,
// LOG_LEVEL=info, in-memory PGlite, offline LLM): from one user API key, a loop of ~586 KB bodies holding
// an array of wrong types, sent to an agent invoke route (POST /api/agents/travel/generateItinerary, the
// array in `interests`, an array of at most 10 strings) and anonymously to POST /api/auth/login (the array
// is the body). Measured with and without the attack, in the same run: liveness (GET /api/health/live
// every 100 ms: 200 vs anything else), the server's event-loop delay p99 and max (its own metrics,
// nodejs_eventloop_lag_*_seconds, read with METRICS_TOKEN; prom-client resets them at each read, so each
// read covers one phase) and the bytes the server logged (its stdout). The attack runs twice: as is (the
// user's rate limit stops most requests with 429 before their body is parsed) and against a second server
// whose rate limits are lifted, so that every body is parsed and validated: the cost of a rejection itself.
// `npm run bench:amplification` (BENCH_AMP_SECONDS per phase, default 30; BENCH_AMP_CONNECTIONS, default 4);
// also part of `npm run bench`.
import http from 'node:http'
import { startServerProcess, type ServerProcess } from './lib.js'
import { pathToFileURL } from 'node:url'

const USER_KEY = 'amk_bench_amplification_user_0123456789'
const METRICS_TOKEN = 'bench-metrics-token-0123456789'

const BODY_BYTES = 586 * 1024

/** An array of wrong types, ~586 KB: as the login body, and as `interests` of an itinerary request. */
function wrongTypeBody (): { invoke: Buffer, login: Buffer } {
  const cycle = ['1', 'true', 'null', '{}', '[]', '1.5', '"x"']
  const items: string[] = []
  let size = 2
  for (let i = 0; size < BODY_BYTES - 64; i++) {
    items.push(cycle[i % cycle.length])
    size += cycle[i % cycle.length].length + 1
  }
  const array = `[${items.join(',')}]`
  return {
    invoke: Buffer.from(`{"destination":"Paris","duration":3,"interests":${array}}`),
    login: Buffer.from(array)
  }
}

interface Phase {
  scenario: string
  attackRequests: number
  attackStatuses: Record<string, number>
  live200: number
  liveOther: number
  eldP99Ms: number
  eldMaxMs: number
  logBytes: number
  seconds: number
}

/** Sends one request; resolves with the status, or 0 on an error or after `timeoutMs`. */
function send (
  port: number,
  method: string,
  path: string,
  headers: Record<string, string>,
  body: Buffer | null,
  timeoutMs: number,
  agent?: http.Agent
): Promise<number> {
  return new Promise(resolve => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent }, res => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
      res.on('error', () => resolve(0))
    })
    req.setTimeout(timeoutMs, () => {
      req.destroy()
      resolve(0)
    })
    req.on('error', () => resolve(0))
    req.end(body ?? undefined)
  })
}

/** Rate limits out of the way of the attack: every request of the user key reaches validation. */
const LIFTED_LIMITS = {
  RATE_LIMIT_GLOBAL_MAX: '0',
  RATE_LIMIT_OVERRIDES: JSON.stringify({ global: 1e9, travel: 1e9, 'travel.generateItinerary': 1e9 })
}

const startServer = (extraEnv: Record<string, string> = {}): Promise<ServerProcess> =>
  startServerProcess({ LOG_LEVEL: 'info', VALID_API_KEYS: `${USER_KEY}:user`, METRICS_TOKEN, ...extraEnv })

/** The server's event-loop delay since the last read, from its Prometheus metrics. */
async function eventLoopDelay (port: number): Promise<{ p99Ms: number, maxMs: number }> {
  const text = await (
    await fetch(`http://127.0.0.1:${port}/api/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })
  ).text()
  const read = (name: string) => Number(new RegExp(`^\\w*${name} ([0-9.e+-]+)`, 'm').exec(text)?.[1] ?? NaN) * 1000
  return { p99Ms: read('nodejs_eventloop_lag_p99_seconds'), maxMs: read('nodejs_eventloop_lag_max_seconds') }
}

async function phase (
  server: ServerProcess,
  scenario: string,
  seconds: number,
  connections: number,
  attack: boolean
): Promise<Phase> {
  const { port } = server
  const result: Phase = {
    scenario,
    attackRequests: 0,
    attackStatuses: {},
    live200: 0,
    liveOther: 0,
    eldP99Ms: 0,
    eldMaxMs: 0,
    logBytes: 0,
    seconds
  }
  await eventLoopDelay(port) // resets the server's histogram: the next read covers this phase only
  const logStart = server.logBytes()
  const end = Date.now() + seconds * 1000
  const probes: Array<Promise<void>> = []
  const probeTimer = setInterval(() => {
    probes.push(
      send(port, 'GET', '/api/health/live', {}, null, 2000).then(status => {
        if (status === 200) result.live200++
        else result.liveOther++
      })
    )
  }, 100)
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections })
  const { invoke, login } = wrongTypeBody()
  const worker = async (i: number) => {
    for (let n = i; Date.now() < end; n++) {
      const toLogin = n % 2 === 1
      const headers: Record<string, string> = { 'content-type': 'application/json' }
      if (!toLogin) headers['x-api-key'] = USER_KEY
      const status = await send(
        port,
        'POST',
        toLogin ? '/api/auth/login' : '/api/agents/travel/generateItinerary',
        headers,
        toLogin ? login : invoke,
        30_000,
        agent
      )
      result.attackRequests++
      result.attackStatuses[status] = (result.attackStatuses[status] ?? 0) + 1
    }
  }
  if (attack) await Promise.all(Array.from({ length: connections }, (_, i) => worker(i)))
  else await new Promise(resolve => setTimeout(resolve, seconds * 1000))
  clearInterval(probeTimer)
  await Promise.all(probes)
  agent.destroy()
  const delay = await eventLoopDelay(port)
  result.eldP99Ms = Math.round(delay.p99Ms * 10) / 10
  result.eldMaxMs = Math.round(delay.maxMs * 10) / 10
  result.logBytes = server.logBytes() - logStart
  return result
}

const ratio = (value: number, base: number) => base > 0 ? `${(value / base).toFixed(1)}×` : value > 0 ? '∞' : '1.0×'

export function formatPhases (phases: Phase[]): string {
  const [base] = phases
  const header = [
    'scenario',
    'attack req',
    'attack statuses',
    'live 200',
    'live non-200',
    'ELD p99 ms',
    'ELD max ms',
    'log bytes',
    'log B/attack req',
    'ELD p99 vs baseline',
    'log vs baseline'
  ]
  const rows = phases.map(p => [
    p.scenario,
    String(p.attackRequests),
    Object.entries(p.attackStatuses)
      .map(([s, n]) => `${s}:${n}`)
      .join(' ') || '-',
    String(p.live200),
    String(p.liveOther),
    String(p.eldP99Ms),
    String(p.eldMaxMs),
    String(p.logBytes),
    p.attackRequests ? String(Math.round(p.logBytes / p.attackRequests)) : '-',
    ratio(p.eldP99Ms, base.eldP99Ms),
    ratio(p.logBytes, base.logBytes)
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map(r => r[i].length)))
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ')} |`
  const rule = `|${widths.map((w, i) => '-'.repeat(w + 1) + (i === 0 ? '-' : ':')).join('|')}|`
  return [line(header), rule, ...rows.map(line)].join('\n')
}

export async function run (): Promise<{ title: string, table: string, notes: string[] }> {
  const seconds = Number(process.env.BENCH_AMP_SECONDS ?? 30)
  const connections = Number(process.env.BENCH_AMP_CONNECTIONS ?? 4)
  const { invoke, login } = wrongTypeBody()
  const phases: Phase[] = []
  const server = await startServer()
  try {
    phases.push(await phase(server, 'no attack (baseline)', seconds, connections, false))
    phases.push(await phase(server, 'amplification attack', seconds, connections, true))
  } finally {
    await server.stop()
  }
  const lifted = await startServer(LIFTED_LIMITS)
  try {
    phases.push(await phase(lifted, 'attack, rate limits lifted', seconds, connections, true))
    return {
      title: `Amplification attack (${seconds} s per phase, ${connections} connections, one user API key)`,
      table: formatPhases(phases),
      notes: [
        `Bodies: invoke ${invoke.length} bytes (interests: an array of wrong types where at most 10 strings are ` +
          `allowed), login ${login.length} bytes (the array itself); alternated.`,
        'Liveness: GET /api/health/live every 100 ms (2 s timeout; a timeout counts as non-200). ' +
          "ELD: the server's nodejs_eventloop_lag p99/max over the phase. " +
          "Log bytes: the server's stdout (LOG_LEVEL=info, production).",
        'Rate limits lifted: a second server (RATE_LIMIT_GLOBAL_MAX=0, travel scopes raised), so every invoke body ' +
          'is parsed and validated rather than refused with 429; compared with the first server\'s baseline. ' +
          'Status 0: the server closed the connection before reading the whole body (413).'
      ]
    }
  } finally {
    await lifted.stop()
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const result = await run()
  process.stdout.write(`\n## ${result.title}\n\n${result.table}\n${result.notes.map(note => `\n${note}\n`).join('')}`)
  process.exit(0)
}

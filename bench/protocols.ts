// The cost of each protocol over the native route (issue 14): the same agent call through the native invoke
// route and MCP's tools/call, and the same streamed call through the native SSE route, the AI SDK UI
// message stream and AG-UI. The server runs in a child process (production mode, offline provider), so
// its CPU is its own: read from /proc/<pid>/stat around each batch. Every call uses a fresh input, so
// none is served from the response cache. Bytes per event = response bytes / frames (SSE events or
// JSON-RPC messages) the client received.
import { readFileSync } from 'node:fs'
import http from 'node:http'
import { pathToFileURL } from 'node:url'
import { startServerProcess } from './lib.js'

const KEY = 'amk_bench_protocols_internal_key_0123456789'
const TICKS_PER_SECOND = 100

interface Call { method: 'POST', path: string, headers: Record<string, string>, body: (i: number) => unknown }

const blogInput = (i: number) => ({ topic: `Protocol benchmark ${i}`, type: 'how-to', length: 600 })

/** The child's user + system CPU in ms (Linux /proc; ticks are 10 ms). */
function cpuMs (pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND
}

function post (port: number, call: Call, i: number): Promise<{ status: number, text: string }> {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify(call.body(i))
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: call.method,
        path: call.path,
        headers: { 'content-type': 'application/json', 'x-api-key': KEY, ...call.headers }
      },
      res => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => { text += chunk })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }))
        res.on('error', reject)
      }
    )
    req.on('error', reject)
    req.end(body)
  })
}

/** SSE frames with data (comments and the retry hint are not events); a JSON body is one message. */
const framesOf = (text: string) =>
  text.includes('data:') ? text.split('\n\n').filter(frame => /^data:/m.test(frame)).length : 1

async function measureCall (port: number, pid: number, scenario: string, call: Call, calls: number, offset: number) {
  const concurrency = 4
  let next = 0
  let frames = 0
  let bytes = 0
  const worker = async () => {
    while (next < calls) {
      const { status, text } = await post(port, call, offset + next++)
      if (status !== 200) throw new Error(`${scenario}: HTTP ${status} ${text.slice(0, 300)}`)
      frames += framesOf(text)
      bytes += Buffer.byteLength(text)
    }
  }
  for (let i = 0; i < 20; i++) await post(port, call, 1_000_000 + offset + i) // warm-up
  const before = cpuMs(pid)
  await Promise.all(Array.from({ length: concurrency }, worker))
  return { cpuMs: cpuMs(pid) - before, frames, bytes }
}

const mcpHeaders = { accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18' }

export async function run () {
  const calls = Number(process.env.BENCH_PROTOCOL_CALLS ?? 300)
  const rounds = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3))
  const server = await startServerProcess({ LOG_LEVEL: 'warn', VALID_API_KEYS: `${KEY}:internal` })
  const { port } = server
  const pid = server.child.pid ?? 0
  const scenarios: Array<[string, Call]> = [
    ['native invoke (POST /api/agents/content/generateBlogPost)', {
      method: 'POST', path: '/api/agents/content/generateBlogPost', headers: {}, body: blogInput
    }],
    ['MCP tools/call content_generateBlogPost (POST /mcp)', {
      method: 'POST',
      path: '/mcp',
      headers: mcpHeaders,
      body: i => ({
        jsonrpc: '2.0',
        id: i,
        method: 'tools/call',
        params: { name: 'content_generateBlogPost', arguments: blogInput(i) }
      })
    }],
    ['native stream (POST /api/stream/blog)', {
      method: 'POST', path: '/api/stream/blog', headers: {}, body: blogInput
    }],
    ['AI SDK UI message stream (?format=ui-message-stream)', {
      method: 'POST', path: '/api/stream/blog?format=ui-message-stream', headers: {}, body: blogInput
    }],
    ['AG-UI (POST /api/ag-ui/content/generateBlogPost)', {
      method: 'POST',
      path: '/api/ag-ui/content/generateBlogPost',
      headers: { accept: 'text/event-stream' },
      body: i => ({
        threadId: `thread-${i}`,
        runId: `run-${i}`,
        state: {},
        messages: [],
        tools: [],
        context: [],
        forwardedProps: { input: blogInput(i) }
      })
    }]
  ]
  try {
    // Rounds alternate between the scenarios, so load from elsewhere hurts each alike; figures are summed.
    const totals = scenarios.map(([scenario]) => ({ scenario, calls: 0, cpuMs: 0, frames: 0, bytes: 0 }))
    for (let round = 0; round < rounds; round++) {
      for (const [i, [scenario, call]] of scenarios.entries()) {
        const sample = await measureCall(port, pid, scenario, call, calls, round * calls)
        totals[i].calls += calls
        totals[i].cpuMs += sample.cpuMs
        totals[i].frames += sample.frames
        totals[i].bytes += sample.bytes
      }
    }
    const [invoke, mcp, native, aiSdk, agUi] = totals.map(t => ({
      scenario: t.scenario,
      calls: t.calls,
      cpuMsPerCall: Math.round((t.cpuMs / t.calls) * 100) / 100,
      frames: Math.round((t.frames / t.calls) * 10) / 10,
      bytesPerFrame: Math.round(t.bytes / t.frames)
    }))
    const rows = [
      { row: invoke, base: invoke },
      { row: mcp, base: invoke },
      { row: native, base: native },
      { row: aiSdk, base: native },
      { row: agUi, base: native }
    ]
    const header = ['scenario', 'calls', 'server CPU ms/call', 'CPU vs native', 'frames/call', 'bytes/frame',
      'bytes/frame vs native']
    const lines = rows.map(({ row, base }) => [
      row.scenario,
      String(row.calls),
      row.cpuMsPerCall.toFixed(2),
      `${(row.cpuMsPerCall / (base.cpuMsPerCall || 1)).toFixed(2)}×`,
      String(row.frames),
      String(row.bytesPerFrame),
      `${(row.bytesPerFrame / (base.bytesPerFrame || 1)).toFixed(2)}×`
    ])
    const table = [
      `| ${header.join(' | ')} |`,
      `|${header.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`,
      ...lines.map(cells => `| ${cells.join(' | ')} |`)
    ].join('\n')
    return {
      title: 'Protocols: overhead over the native routes (server CPU per call, bytes per event)',
      table,
      notes: [
        'MCP is compared with the native invoke route (both answer one call), AI SDK and AG-UI with the native ' +
        'stream route (the same event log, another wire). CPU is the server process only (/proc, 10 ms ticks), ' +
        `over ${rounds} alternating rounds of ${calls} calls from 4 concurrent clients; every call has a fresh input ` +
        '(no cache hits).'
      ]
    }
  } finally {
    await server.stop()
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const result = await run()
  process.stdout.write(`\n## ${result.title}\n\n${result.table}\n${result.notes.map(note => `\n${note}\n`).join('')}`)
  process.exit(0)
}

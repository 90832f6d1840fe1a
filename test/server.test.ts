// The real entry point as a child process: `npm start`'s command serves with embedded PGlite, no Redis and
// no keys, prints a banner saying so, exits 0 on SIGTERM within the grace period, and a second start
// reuses the data directory (no migration applied again, data kept).
import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startServer } from './child-server.js'
import { openDatabase } from '../src/store/database.js'

const SIGTERM_LIMIT_MS = 10_000
// Two cold starts of PGlite plus the TypeScript loader: slow on a loaded 2-core machine.
t.setTimeout(300_000)

t.test(
  'npm start: PGlite in ./data, no Redis, no keys; banner; SIGTERM exits 0; a second start reuses the data',
  async t => {
    const dir = await mkdtemp(join(tmpdir(), 'amk-start-'))
    t.teardown(() => rm(dir, { recursive: true, force: true }))
    const dataDir = join(dir, 'data')
    const env = { DATA_DIR: dataDir, LOG_LEVEL: 'info' }

    const first = await startServer(t, ['--import=tsx', 'src/server.ts'], env)
    const banner = first.output()
    t.match(banner, `Amrikyy Agent API 1.0.0 listening on http://localhost:${first.port} (development)`)
    t.match(banner, new RegExp(`\\n  database +: embedded PGlite \\(${dataDir}\\)\\n`), 'database in use')
    t.match(banner, /\n {2}redis +: not configured \(in-memory stores\)\n/, 'no Redis')
    t.match(banner, /\n {2}llm +: offline \(no GEMINI_API_KEY\)\n/, 'the offline LLM provider, since no key is set')
    t.match(banner, `: http://localhost:${first.port}/docs`)
    t.match(banner, /"from":"(initdb|snapshot|schema snapshot)".*"msg":"database created"/, 'the first start makes the database')

    const status = await fetch(`http://127.0.0.1:${first.port}/api/status`)
    t.equal(status.status, 200)
    t.match(await status.json(), { service: 'amrikyy-agent-api', environment: 'development', ready: true })
    const ready = await fetch(`http://127.0.0.1:${first.port}/api/health/ready`)
    t.equal(ready.status, 200)

    // No key configured: the banner prints a development admin key once, and any method answers offline.
    const devKey = /dev key\s*:\s*(amk_\w+)/.exec(banner)?.[1]
    t.ok(devKey, 'the banner shows the generated development key')
    const flights = await fetch(`http://127.0.0.1:${first.port}/api/agents/travel/searchFlights`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': String(devKey) },
      body: JSON.stringify({ from: 'Cairo', to: 'Paris', date: '2027-05-01' })
    })
    t.equal(flights.status, 200)
    const reply = (await flights.json()) as { usage: { model: string }; data: unknown }
    t.equal(reply.usage.model, 'offline', 'labelled offline')
    t.match(JSON.stringify(reply.data), /Paris/, 'useful output about the request')

    const stopped = await first.stop()
    t.same({ code: stopped.code, signal: stopped.signal }, { code: 0, signal: null }, 'SIGTERM exits with code 0')
    t.ok(stopped.ms < SIGTERM_LIMIT_MS, `exited ${stopped.ms} ms after SIGTERM (limit ${SIGTERM_LIMIT_MS} ms)`)
    t.match(first.output(), '"signal":"SIGTERM","msg":"shutting down"')

    // Something written between the starts must still be there after the second one.
    const db = await openDatabase({ dataDir })
    const migrations = await db.query('SELECT version, applied_at FROM schema_migrations ORDER BY version')
    t.ok(migrations.length > 0)
    await db.query("INSERT INTO users (email, password_hash, role) VALUES ('kept@example.com', 'x', 'user')")
    await db.close()

    const second = await startServer(t, ['--import=tsx', 'src/server.ts'], env)
    t.notMatch(second.output(), /database (created|migrations applied)/, 'the second start makes and applies nothing')
    t.match(second.output(), `: embedded PGlite (${dataDir})`)
    t.equal((await fetch(`http://127.0.0.1:${second.port}/api/health`)).status, 200)
    const again = await second.stop()
    t.equal(again.code, 0)

    const reopened = await openDatabase({ dataDir })
    t.teardown(() => reopened.close())
    t.same(
      await reopened.query('SELECT version, applied_at FROM schema_migrations ORDER BY version'),
      migrations,
      'same migration records'
    )
    t.same(await reopened.query('SELECT email FROM users'), [{ email: 'kept@example.com' }], 'data kept')
  }
)

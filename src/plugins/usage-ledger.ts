// The usage ledger as a plugin: the ledger over app.db with its durable buffer (a Redis list when Redis
// is configured, else a JSON-lines file under DATA_DIR/usage-buffer, memory only for DATA_DIR=memory://)
// and, on PGlite in a DATA_DIR, its journal,
// this replica's id, the heartbeat / replay / sweep ticker, the usage_buffer_depth gauge and the `usage`
// health component (buffer depth, unpriced models). Unpriced models also go to the startup banner.
import fp from 'fastify-plugin'
import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { createFileBuffer, createMemoryBuffer, createRedisBuffer } from '../store/usage-buffer.js'
import { isMemoryDir } from '../store/database.js'
import { openJournal } from '../store/journal.js'
import { createUsageLedger, type UsageLedger } from '../store/usage-ledger.js'
import { isStored } from '../store/usage-sql.js'

declare module 'fastify' {
  interface FastifyInstance {
    usageLedger: UsageLedger
  }
}

export default fp(async function usageLedger (app) {
  const { config } = app
  const log = app.log.child({ component: 'usage-ledger' })
  const instanceId = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`
  const inMemory = isMemoryDir(config.DATA_DIR)
  const local = inMemory ? createMemoryBuffer() : await createFileBuffer(join(config.DATA_DIR, 'usage-buffer'))
  const buffer = app.redis
    ? createRedisBuffer({
      redis: app.redis,
      breaker: app.redisBreaker,
      key: `${config.REDIS_KEY_PREFIX}usage-buffer`,
      fallback: local,
      timeoutMs: 1000,
      token: instanceId
    })
    : local
  // Durable writes on PGlite in a DATA_DIR go through the journal (src/store/journal.ts); the rows an
  // earlier process left in it are replayed through the buffer.
  const journal = app.db.kind === 'pglite' && !inMemory && config.USAGE_WRITE_MODE === 'durable'
    ? await openJournal(join(config.DATA_DIR, 'usage-buffer'), rows => buffer.push(rows.filter(isStored)))
    : undefined
  const ledger = createUsageLedger(app.db, {
    instanceId,
    buffer,
    writeTimeoutMs: config.USAGE_WRITE_TIMEOUT_MS,
    mode: config.USAGE_WRITE_MODE,
    behindMs: config.USAGE_WRITE_BEHIND_MS,
    journalMs: config.USAGE_JOURNAL_WRITE_MS,
    staleMs: config.USAGE_STALE_MS,
    log,
    journal,
    // PGlite runs each bound statement as six protocol messages through its WASM; one exec() is cheaper, and
    // write() groups it with the run store's writes sent meanwhile (store/write-group.ts).
    ...(app.db.kind === 'pglite' ? { exec: (sql: string) => app.db.write(sql) } : {})
  })
  app.decorate('usageLedger', ledger)

  // Unpriced models cost $0 in the ledger: name the configured ones now and any other seen in a call.
  const { pricing } = app.llm
  const unpriced = new Set(pricing.unpriced([app.llm.modelFor('flash'), app.llm.modelFor('pro')]))
  if (unpriced.size > 0) {
    app.notices.push(
      `Pricing: no price for ${[...unpriced].join(', ')}; their calls are recorded at $0 ` +
      'and refused under a dollar budget. Set LLM_PRICING.'
    )
  }

  const depth = app.meters.gauge(
    'usage_buffer_depth',
    'Usage-ledger writes waiting in the durable buffer (replayed into the database)'
  )
  const gaugeTimer = setInterval(() => depth.set(ledger.depth()), Math.min(config.USAGE_FLUSH_INTERVAL_MS, 5000))
  gaugeTimer.unref()
  depth.set(0)

  app.health.register('usage', async () => {
    const waiting = ledger.depth()
    depth.set(waiting)
    const details = { buffer: ledger.bufferKind, bufferDepth: waiting, instanceId, unpricedModels: [...unpriced] }
    const problems = [
      ...(waiting > 0 ? [`${waiting} usage rows wait in the ${ledger.bufferKind} buffer`] : []),
      ...(unpriced.size > 0 ? [`unpriced models (recorded at $0): ${[...unpriced].join(', ')}`] : [])
    ]
    if (problems.length > 0) return { status: 'degraded', message: problems.join('; '), details }
    return {
      status: 'healthy',
      message: `ledger writes reach the database (${ledger.bufferKind} buffer empty)`,
      details
    }
  })

  app.addHook('onReady', async () => {
    app.agents.addHooks({
      onLlmCall (record) { if (!pricing.isKnown(record.model)) unpriced.add(record.model) }
    })
    ledger.start(config.USAGE_FLUSH_INTERVAL_MS)
  })
  app.addHook('onClose', async () => {
    clearInterval(gaugeTimer)
    await ledger.close()
  })
}, { name: 'usage-ledger', dependencies: ['config', 'health', 'redis', 'store', 'metrics', 'llm'] })

// SSE streaming (DESIGN §8): wires the framework-free stream service to the app — event log (Redis
// Streams when app.redis, memory otherwise), tickets (as an authenticator for `?ticket=` on routes that
// opt in with `config.streamTicket`), caps, metrics, heartbeats, the cross-replica cancel bus, and
// shutdown: in preClose every open stream gets its final SHUTTING_DOWN event and is ended.
import fp from 'fastify-plugin'
import { hostname } from 'node:os'
import { randomBytes } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import type { Caller } from '../auth/roles.js'
import { BudgetExceededError, ServiceUnavailableError, UnauthorizedError, withDetails } from '../errors.js'
import type { EventLog } from '../streams/event-log.js'
import { MemoryEventLog } from '../streams/memory-event-log.js'
import { RedisEventLog } from '../streams/redis-event-log.js'
import { SharedCallerSlots } from '../streams/caller-slots.js'
import { SessionRegistry } from '../streams/sessions.js'
import { createTicketStore, TICKET_PREFIX, type TicketStore } from '../streams/tickets.js'
import { createCancelBus } from '../streams/cancel-bus.js'
import { StreamService } from '../streams/service.js'

declare module 'fastify' {
  interface FastifyInstance {
    streams: {
      service: StreamService
      tickets: TicketStore
      registry: SessionRegistry
      log: EventLog
      instanceId: string
    }
  }
  interface FastifyRequest {
    /**
     * Set when a one-time ticket authenticated the request: the ticket and the stream it is bound to
     * (null = unused).
     */
    streamTicket: { ticket: string; streamId: string | null } | null
  }
  interface FastifyContextConfig {
    /** The route accepts `?ticket=` (EventSource cannot send headers). */
    streamTicket?: boolean
  }
}

export default fp(async function streams (app) {
  const config = app.config
  const ttlMs = config.STREAM_REPLAY_TTL * 1000
  const endedTtlMs = Math.min(config.STREAM_ENDED_REPLAY_TTL * 1000, ttlMs)
  // With Redis a replica's leases (its streams, its callers' stream slots) lapse after three silent heartbeats.
  const leaseMs = 3 * config.STREAM_HEARTBEAT_MS
  const instanceId = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`
  const warn = (what: string) => (error: Error) => app.log.warn({ err: error.message }, `streams: ${what} (redis)`)

  const log: EventLog = app.redis
    ? new RedisEventLog({
      redis: app.redis,
      keyPrefix: config.REDIS_KEY_PREFIX,
      ttlMs,
      endedTtlMs,
      maxEvents: config.STREAM_LOG_MAX_EVENTS,
      instanceId,
      leaseMs,
      blockMs: Math.min(5000, config.STREAM_HEARTBEAT_MS),
      onError: (e, what) => warn(`event log ${what} failed`)(e)
    })
    : new MemoryEventLog({ ttlMs, endedTtlMs, maxEvents: config.STREAM_LOG_MAX_EVENTS })
  const tickets = createTicketStore({
    redis: app.redis,
    keyPrefix: config.REDIS_KEY_PREFIX,
    ticketTtlMs: config.STREAM_TICKET_TTL_MS,
    replayTtlMs: ttlMs,
    onError: warn('ticket store failed, kept in memory')
  })
  const registry = new SessionRegistry({
    maxStreams: config.MAX_CONCURRENT_STREAMS,
    maxPerCaller: config.MAX_CONCURRENT_STREAMS_PER_CALLER
  })
  // With Redis the per-caller cap holds across replicas; the process cap stays per process (it guards this process).
  const callerSlots = app.redis
    ? new SharedCallerSlots({
      redis: app.redis,
      keyPrefix: config.REDIS_KEY_PREFIX,
      leaseMs,
      onError: warn('shared stream caps unavailable, per-process caps apply')
    })
    : null

  const total = app.meters.counter('stream_sessions_total', 'SSE stream generations, by agent and final status', [
    'agent',
    'status'
  ])
  const active = app.meters.gauge('stream_sessions_active', 'SSE stream generations running in this process', ['agent'])
  const duration = app.meters.histogram(
    'stream_duration_seconds',
    'Duration of SSE stream generations',
    ['agent', 'status'],
    [0.5, 1, 2.5, 5, 10, 30, 60, 120, 300]
  )
  for (const agent of Object.keys(app.agents.definitions)) active.set({ agent }, 0)

  // A spent budget refuses the stream before it opens (zero reserved: a pure check of today's usage).
  // Concurrent opens of one caller share one check, so a burst costs the database one lookup per caller.
  const budgetChecks = new Map<string, Promise<void>>()
  const checkBudget = async (caller: Caller): Promise<void> => {
    if (!app.hasDecorator('budgets')) return
    const result = await app.budgets.reserve(caller, { tokens: 0, costUsd: 0 })
    if (result.ok) return
    const { rejection } = result
    throw withDetails(
      new BudgetExceededError(
        `Daily ${rejection.dimension === 'usd' ? 'dollar' : 'token'} budget spent; it resets at ${rejection.resetsAt}`
      ),
      rejection,
      { 'retry-after': String(rejection.retryAfterSeconds) }
    )
  }

  const service = new StreamService({
    log,
    tickets,
    registry,
    callerSlots,
    precheck: (caller) => {
      let check = budgetChecks.get(caller.id)
      if (!check) {
        check = checkBudget(caller).finally(() => budgetChecks.delete(caller.id))
        budgetChecks.set(caller.id, check)
      }
      return check
    },
    invoke: (request) => app.agents.invoke(request),
    instanceId,
    retryMs: config.STREAM_RETRY_MS,
    flushMs: config.STREAM_FLUSH_MS,
    shutdownFlushMs: config.STREAM_SHUTDOWN_FLUSH_MS,
    capRetryAfterSeconds: 5,
    logger: app.log,
    metrics: {
      started: (agent) => {
        active.inc({ agent })
        app.agentStats.streamStarted(agent)
      },
      finished: (agent, outcome, seconds) => {
        active.dec({ agent })
        app.agentStats.streamEnded(agent)
        total.inc({ agent, status: outcome.status })
        duration.observe({ agent, status: outcome.status }, seconds)
      }
    }
  })
  service.cancelBus = await createCancelBus({
    redis: app.redis,
    channel: `${config.REDIS_KEY_PREFIX}stream-cancel`,
    onCancel: (streamId) => service.abortLocal(streamId),
    onError: warn('cancel bus error'),
    waitMs: config.REDIS_CONNECT_TIMEOUT_MS
  })

  // `?ticket=` authenticates only on routes that opt in, and only when no header credential was sent.
  app.decorateRequest('streamTicket', null)
  app.authenticators.add(async (request: FastifyRequest) => {
    const ticket = (request.query as Record<string, unknown> | undefined)?.ticket
    if (typeof ticket !== 'string' || !request.routeOptions.config.streamTicket) return null
    let record
    try {
      record = ticket.startsWith(TICKET_PREFIX) ? await tickets.peek(ticket) : null
    } catch {
      throw new ServiceUnavailableError('Stream tickets cannot be checked right now; retry shortly')
    }
    if (!record) throw new UnauthorizedError('Unknown or expired stream ticket')
    request.streamTicket = { ticket, streamId: record.streamId ?? null }
    return record.caller
  })

  const heartbeat = setInterval(() => service.heartbeat(), config.STREAM_HEARTBEAT_MS)
  heartbeat.unref()

  app.decorate('streams', { service, tickets, registry, log, instanceId })
  app.features.streams = `${log.kind} event log (replay ${config.STREAM_REPLAY_TTL} s), ` +
    `max ${config.MAX_CONCURRENT_STREAMS} streams here, ` +
    `${config.MAX_CONCURRENT_STREAMS_PER_CALLER} per caller${callerSlots ? ' across replicas' : ''}`

  // Readiness already fails (the health plugin's preClose ran first); now tell every client and end.
  app.addHook('preClose', async () => {
    await service.shutdown(Math.max(1000, config.SHUTDOWN_GRACE_MS / 2))
  })
  app.addHook('onClose', async () => {
    clearInterval(heartbeat)
    callerSlots?.close()
    await service.cancelBus?.close()
    await log.close()
  })
}, { name: 'streams', dependencies: ['config', 'health', 'redis', 'metrics', 'auth', 'agents', 'agent-stats'] })

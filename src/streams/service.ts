// The stream service: starts generations, serves connections from the event log (start, resume from
// any replica), cancels, and ends everything cleanly at shutdown. Errors thrown before a response is
// opened become normal JSON errors; after that, everything travels as events. No Fastify import.
import { randomFillSync } from 'node:crypto'
import type { ServerResponse } from 'node:http'
import type { AgentName, InvokeRequest, InvokeResult } from '../agents/types.js'
import { LazyAbortController } from '../agents/call-abort.js'
import { stringFieldOf } from '../agents/unknown-values.js'
import { hasPermission, type Caller } from '../auth/roles.js'
import {
  ForbiddenError,
  GoneError,
  messageOf,
  NotFoundError,
  ServiceUnavailableError,
  ShuttingDownError,
  TooManyStreamsError,
  UnauthorizedError,
  withDetails
} from '../errors.js'
import { SseConnection } from './connection.js'
import { eventId, isTerminal, parseEventId, type StreamWire } from './events.js'
import { pumpFollow, pumpLocal, WritePacer } from './pump.js'
import { StreamGapError, type EventLog, type StreamMeta } from './event-log.js'
import { runGeneration, type GenerationDeps, type GenerationOutcome, type ItemEvents } from './generation.js'
import type { Session, SessionRegistry } from './sessions.js'
import type { TicketStore } from './tickets.js'
import type { CancelBus } from './cancel-bus.js'
import type { SharedCallerSlots } from './caller-slots.js'

export interface StreamServiceOptions {
  log: EventLog
  tickets: TicketStore
  registry: SessionRegistry
  invoke(request: InvokeRequest): Promise<InvokeResult>
  instanceId: string
  retryMs: number
  /** Write coalescing per connection (STREAM_FLUSH_MS; see WritePacer). */
  flushMs: number
  shutdownFlushMs: number
  capRetryAfterSeconds: number
  logger: { warn(obj: object, msg: string): void }
  /** The per-caller cap across replicas (Redis); without it the cap is per process. */
  callerSlots?: Pick<SharedCallerSlots, 'acquire' | 'releaseAll'> | null
  /** Refuses a start before the stream opens (a spent budget: 429 with Retry-After, like invoke routes). */
  precheck?(caller: Caller, agent: AgentName, method: string): Promise<void>
  metrics: { started(agent: string): void, finished(agent: string, outcome: GenerationOutcome, seconds: number): void }
}

/** Opens the HTTP response (the route hijacks the reply) and returns it with the headers to send. */
export type Opener = () => {
  res: ServerResponse
  headers: Record<string, string | string[] | number>
  /** The connection's format (native §8 events when absent). */
  wire?: StreamWire
}

export interface StartParams {
  agent: AgentName
  method: string
  input: Record<string, unknown>
  caller: Caller
  onDisconnect: 'cancel' | 'continue'
  items?: ItemEvents
  /** The one-time ticket that authenticated this request, claimed by the new stream. */
  ticket?: string
  /** Skip the response cache (Cache-Control: no-cache or no-store). */
  noCache?: boolean
}

export interface ResumeParams {
  streamId: string
  lastEventId?: string
  caller: Caller
  /** Stream a ticket was bound to, when the request was authenticated by one. */
  ticketStreamId?: string | null
}

/**
 * 96 random bits as 24 hex characters, from a pool refilled 256 ids at a time: `randomBytes(12)` per stream
 * cost 2–16 µs (a Buffer and a call into the CSPRNG each), as node's `randomUUID()` pools its own.
 */
const idPool = Buffer.alloc(12 * 256)
let idAt = idPool.length
export function randomHex12 (): string {
  if (idAt === idPool.length) {
    randomFillSync(idPool)
    idAt = 0
  }
  return idPool.toString('hex', idAt, (idAt += 12))
}

export class StreamService {
  readonly connections = new Set<SseConnection>()
  cancelBus: CancelBus | null = null
  private shuttingDown = false

  private readonly pacer: WritePacer
  /** What every generation runs with: one object for all streams. */
  private readonly generation: GenerationDeps

  constructor (private readonly options: StreamServiceOptions) {
    this.pacer = new WritePacer(options.flushMs)
    this.generation = {
      log: options.log,
      invoke: options.invoke,
      onToken: agent => options.registry.countToken(agent),
      ended: (session, outcome) => {
        try {
          options.registry.finish(session, outcome.status, outcome.timeToFirstTokenMs)
          options.metrics.finished(session.agent, outcome, (Date.now() - session.startedAt) / 1000)
        } finally {
          session.letGo?.()
        }
      }
    }
  }

  /**
   * A slot for one stream: this process's caps first, then the caller's cap across replicas. Every holder
   * of one stream shares its slot; a resume takes over the slot its stream still holds anywhere.
   */
  private async acquire (caller: Caller, streamId: string, takeOver: boolean): Promise<() => void> {
    const retryAfter = { 'retry-after': String(this.options.capRetryAfterSeconds) }
    const perCaller = (limit: number) =>
      withDetails(
        new TooManyStreamsError(`At most ${limit} concurrent streams per caller`),
        { limit, scope: 'caller' },
        retryAfter
      )
    const grant = this.options.registry.acquire(caller.id, streamId)
    if (!grant.ok) {
      if (grant.scope === 'caller') throw perCaller(grant.limit)
      throw withDetails(
        new ServiceUnavailableError(`This instance serves at most ${grant.limit} concurrent streams`),
        { limit: grant.limit, scope: 'process' },
        retryAfter
      )
    }
    if (!this.options.callerSlots) return grant.release
    const limit = this.options.registry.maxPerCaller
    const releaseShared = await this.options.callerSlots.acquire(caller.id, limit, { streamId, takeOver })
    if (!releaseShared) {
      grant.release()
      throw perCaller(limit)
    }
    return () => { grant.release(); releaseShared() } // releaseShared never rejects
  }

  async start (params: StartParams, open: Opener): Promise<void> {
    if (this.shuttingDown) throw new ShuttingDownError()
    await this.precheck(params)
    const streamId = `st_${randomHex12()}`
    const release = await this.acquire(params.caller, streamId, false)
    try {
      const { ticket } = params
      if (ticket && !(await this.fromStore(() => this.options.tickets.claim(ticket, streamId)))) {
        throw new UnauthorizedError(
          'This ticket was already used to start a stream; resume it with Last-Event-ID or get a new ticket'
        )
      }
      const meta: StreamMeta = {
        streamId,
        ownerId: params.caller.id,
        agent: params.agent,
        method: params.method,
        createdAt: Date.now(),
        onDisconnect: params.onDisconnect,
        instanceId: this.options.instanceId
      }
      await this.fromStore(() => this.options.log.create(meta))
    } catch (error) {
      release()
      throw error
    }
    // The slot is held until both the generation has ended and this first connection has closed.
    let holders = 2
    const letGo = () => { if (--holders === 0) release() }
    const session: Session = {
      streamId,
      agent: params.agent,
      method: params.method,
      callerId: params.caller.id,
      onDisconnect: params.onDisconnect,
      startedAt: Date.now(),
      abort: new LazyAbortController(),
      status: 'running',
      connections: 0,
      done: Promise.resolve(),
      letGo
    }
    this.options.registry.add(session)
    this.options.metrics.started(params.agent)
    // The generation's end is reported by the deps every generation shares (`ended`, which lets go of its
    // hold): no reaction or closure of this stream's own waits for it.
    session.done = runGeneration(session, params, this.generation)
    this.serve(open, streamId, 0, session, letGo)
  }

  /** Serves the stream after the position; 'finished' (nothing opened) when the position is its end. */
  async resume (params: ResumeParams, open: Opener): Promise<'served' | 'finished'> {
    if (this.shuttingDown) throw new ShuttingDownError()
    const { streamId } = params
    const position = params.lastEventId ? parseEventId(params.lastEventId) : { streamId, seq: 0 }
    if (!position || position.streamId !== streamId) {
      throw withDetails(new GoneError(`Last-Event-ID ${params.lastEventId} does not belong to stream ${streamId}`), {
        streamId,
        reason: 'foreign-event-id'
      })
    }
    if (params.ticketStreamId !== undefined && params.ticketStreamId !== streamId) {
      throw new UnauthorizedError('This ticket is good only for resuming the stream it started')
    }
    const { meta, firstSeq } = await this.lookup(streamId)
    if (!meta) {
      throw withDetails(
        new GoneError(`Stream ${streamId} is unknown or its events expired (kept for the replay TTL)`),
        { streamId, reason: 'expired' }
      )
    }
    if (meta.ownerId !== params.caller.id) {
      throw new ForbiddenError('owner of this stream (only the caller who started a stream may resume it)')
    }
    if (firstSeq > position.seq + 1) {
      throw withDetails(
        new GoneError(
          `Events after ${params.lastEventId} are no longer held; the stream resumes at ${eventId(streamId, firstSeq)}`
        ),
        { streamId, reason: 'gap', firstAvailableId: eventId(streamId, firstSeq) }
      )
    }
    const last = await this.fromStore(() => this.options.log.last(streamId))
    // Nothing follows the end: 204 tells EventSource to stop reconnecting.
    if (last && isTerminal(last) && last.seq <= position.seq) return 'finished'
    const release = await this.acquire(params.caller, streamId, true)
    this.serve(open, streamId, position.seq, this.options.registry.get(streamId), release)
    return 'served'
  }

  /** Errors of our catalogue pass (429 budget); anything else (a database that cannot answer) is a 503. */
  private async precheck (params: StartParams): Promise<void> {
    try {
      await this.options.precheck?.(params.caller, params.agent, params.method)
    } catch (error) {
      if (stringFieldOf(error, 'code')?.startsWith('AMK_')) throw error
      this.options.logger.warn({ err: messageOf(error) }, 'stream precheck failed')
      throw withDetails(new ServiceUnavailableError('Budgets cannot be checked right now; retry shortly'), undefined, {
        'retry-after': '2'
      })
    }
  }

  private async lookup (streamId: string) {
    return this.fromStore(async () => {
      const meta = await this.options.log.meta(streamId)
      return { meta, firstSeq: meta ? await this.options.log.firstSeq(streamId) : 0 }
    })
  }

  /** A read or write of the stream log or tickets before a response opened: failing, a 503 (never a 500). */
  private async fromStore<T> (use: () => Promise<T>): Promise<T> {
    try {
      return await use()
    } catch (error) {
      this.options.logger.warn({ err: messageOf(error) }, 'stream log unavailable')
      throw withDetails(new ServiceUnavailableError('The stream log is unavailable; retry shortly'), undefined, {
        'retry-after': '2'
      })
    }
  }

  /**
   * Opens the response (a failure here is still a JSON error) and writes the stream to it in the background;
   * `done` runs when that ends. Not awaited by the route: neither its frame nor the request's objects stay
   * held for the stream's life (about a kilobyte per open stream).
   */
  private serve (open: Opener, streamId: string, afterSeq: number, session: Session | undefined, done: () => void) {
    let connection: SseConnection
    try {
      const { res, headers, wire } = open()
      connection = new SseConnection(res, streamId, afterSeq, wire)
      connection.open(headers, this.options.retryMs)
    } catch (error) {
      done()
      throw error
    }
    this.connections.add(connection)
    if (session) session.connections++
    this.write(connection, streamId, afterSeq, session, done)
  }

  /**
   * Writes the stream from the log to one connection until its terminal event, a disconnect or shutdown,
   * then calls `done`. Nothing of it waits in an async frame while the stream is open (a stream generated
   * here is pumped by callbacks). Never throws: a failure after the response opened travels as an event or
   * a warning.
   */
  private write (
    connection: SseConnection,
    streamId: string,
    afterSeq: number,
    session: Session | undefined,
    done: () => void
  ): void {
    const ended = (error?: unknown) => { this.ended(connection, streamId, session, error).finally(done) }
    const local = this.options.log.localFor(streamId, afterSeq)
    if (local) pumpLocal(connection, local, streamId, afterSeq, ended, this.pacer)
    else pumpFollow(connection, this.options.log, streamId, afterSeq).then(() => ended(), ended)
  }

  /** After a connection's pump: says why when it fell behind, ends it, and lets its session know. */
  private async ended (
    connection: SseConnection,
    streamId: string,
    session: Session | undefined,
    error: unknown
  ): Promise<void> {
    try {
      if (error instanceof StreamGapError) {
        // Fell behind past STREAM_LOG_MAX_EVENTS: say so (a resume from here would get 410 gap too).
        await connection.write(
          connection.wire.notice(connection.lastEventId, {
            event: 'error',
            data: {
              code: 'STREAM_GAP',
              message: error.message,
              recoverable: false,
              lastEventId: connection.lastEventId
            }
          })
        )
      } else if (error !== undefined) {
        this.options.logger.warn({ err: messageOf(error), streamId }, 'stream follow failed; the client will reconnect')
      }
    } finally {
      connection.end()
      this.connections.delete(connection)
      if (session) {
        session.connections--
        if (
          session.connections === 0 &&
          session.status === 'running' &&
          connection.endReason === 'client-closed' &&
          session.onDisconnect === 'cancel'
        ) {
          session.abort.abort('disconnect')
        }
        if (session.connections === 0) session.detachedAt = Date.now()
      }
    }
  }

  /** Aborts a stream wherever it runs; the owner or a caller with agent:manage. */
  async cancel (streamId: string, caller: Caller): Promise<'cancelled' | 'already-finished' | 'cancel-requested'> {
    const { meta } = await this.lookup(streamId)
    if (!meta) throw withDetails(new NotFoundError(`Stream ${streamId} is unknown or expired`), { streamId })
    if (meta.ownerId !== caller.id && !hasPermission(caller.role, 'agent:manage')) {
      throw new ForbiddenError('agent:manage (or be the owner of this stream)')
    }
    const local = this.options.registry.get(streamId)
    if (local) {
      local.abort.abort('cancel')
      await local.done
      return 'cancelled'
    }
    const last = await this.fromStore(() => this.options.log.last(streamId))
    if (last && isTerminal(last)) return 'already-finished'
    await this.cancelBus?.publish(streamId)
    return 'cancel-requested'
  }

  /** Cancel-bus handler: aborts the stream if it runs here. */
  abortLocal (streamId: string): void {
    this.options.registry.get(streamId)?.abort.abort('cancel')
  }

  /** Cancels generations nobody has read for `idleMs` (onDisconnect 'continue' orphans) and sweeps the log. */
  cleanup (idleMs: number): { cancelled: number, expiredLogs: number } {
    const idle = this.options.registry.idle(idleMs, s => s.detachedAt ?? s.startedAt)
    for (const session of idle) session.abort.abort('idle')
    return { cancelled: idle.length, expiredLogs: this.options.log.sweep() }
  }

  heartbeat (): void {
    for (const connection of this.connections) connection.heartbeat()
  }

  /**
   * preClose: no new streams; the callers' slots are given back first (their clients are about to resume
   * on another replica, which must not count them twice); every open connection gets SHUTTING_DOWN with
   * its last event id and is ended; generations running here are aborted (their log ends with
   * GENERATION_INTERRUPTED) and the log is flushed, so a resume elsewhere gets every event and a clear end.
   */
  async shutdown (waitMs: number): Promise<void> {
    this.shuttingDown = true
    this.pacer.flush() // what waits for the pacer goes out before the SHUTTING_DOWN notices
    await this.options.callerSlots?.releaseAll()
    await Promise.all([...this.connections].map(connection => connection.shutdown(this.options.shutdownFlushMs)))
    const sessions = [...this.options.registry.sessions.values()]
    for (const session of sessions) session.abort.abort('shutdown')
    let timer: NodeJS.Timeout | undefined
    await Promise.race([
      Promise.all(sessions.map(s => s.done)),
      new Promise(resolve => { timer = setTimeout(resolve, waitMs) })
    ])
    clearTimeout(timer)
    await this.options.log.drain()
  }
}

// The registry of this process's streams: concurrency caps (per process and per caller), the running
// generations (so cancel, disconnect and shutdown can abort them), and per-agent statistics.
// Framework-free; the stream service maps refusals to HTTP errors.
import type { LazyAbortController } from '../agents/call-abort.js'

export type SessionStatus = 'running' | 'completed' | 'cancelled' | 'error' | 'interrupted'

/** A generation running in this process. */
export interface Session {
  streamId: string
  agent: string
  method: string
  callerId: string
  onDisconnect: 'cancel' | 'continue'
  startedAt: number
  /** Aborts the generation; its own light signal (no AbortSignal held for the stream's life). */
  abort: LazyAbortController
  status: SessionStatus
  /** Open local connections reading this stream. */
  connections: number
  /** When the last local connection closed (cleanup cancels generations no one reads). */
  detachedAt?: number
  /** Settles when the generation has ended, its terminal event is logged and its end reported. */
  done: Promise<unknown>
  /** Gives back the generation's hold on the stream's slot (once, when it has ended). */
  letGo?: () => void
}

export interface AgentStreamStats {
  agent: string
  active: number
  started: number
  completed: number
  cancelled: number
  failed: number
  interrupted: number
  averageDurationMs: number
  averageTimeToFirstTokenMs: number | null
  tokens: number
}

type Refusal = { ok: false, scope: 'process' | 'caller', limit: number }
type Grant = { ok: true, release: () => void }

export interface RegistryOptions { maxStreams: number, maxPerCaller: number }

function emptyStats (agent: string) {
  return {
    agent,
    started: 0,
    completed: 0,
    cancelled: 0,
    failed: 0,
    interrupted: 0,
    durationMs: 0,
    finished: 0,
    ttftMs: 0,
    ttftCount: 0,
    tokens: 0
  }
}

export class SessionRegistry {
  readonly sessions = new Map<string, Session>()
  private slots = 0
  /** caller → stream → holders here: the per-caller cap counts streams, not connections to them. */
  private readonly perCaller = new Map<string, Map<string, number>>()
  private readonly stats = new Map<string, ReturnType<typeof emptyStats>>()
  private unnamed = 0

  constructor (private readonly options: RegistryOptions) {}

  /**
   * Takes one stream slot (an open connection or a detached generation). With a stream id, another
   * holder of the same stream (a resume of a stream this caller already holds) counts once per caller.
   */
  acquire (callerId: string, streamId?: string): Grant | Refusal {
    if (this.slots >= this.options.maxStreams) return { ok: false, scope: 'process', limit: this.options.maxStreams }
    const mine = this.perCaller.get(callerId) ?? new Map<string, number>()
    const stream = streamId ?? `#${++this.unnamed}`
    const holders = mine.get(stream) ?? 0
    if (holders === 0 && mine.size >= this.options.maxPerCaller) {
      return { ok: false, scope: 'caller', limit: this.options.maxPerCaller }
    }
    this.slots++
    mine.set(stream, holders + 1)
    this.perCaller.set(callerId, mine)
    let released = false
    return {
      ok: true,
      release: () => {
        if (released) return
        released = true
        this.slots--
        const left = (mine.get(stream) ?? 1) - 1
        if (left > 0) mine.set(stream, left)
        else mine.delete(stream)
        if (mine.size === 0 && this.perCaller.get(callerId) === mine) this.perCaller.delete(callerId)
      }
    }
  }

  get maxPerCaller (): number {
    return this.options.maxPerCaller
  }

  get openSlots (): number {
    return this.slots
  }

  /** Streams the caller holds slots for in this process. */
  callerSlots (callerId: string): number {
    return this.perCaller.get(callerId)?.size ?? 0
  }

  add (session: Session): void {
    this.sessions.set(session.streamId, session)
    this.agentStats(session.agent).started++
  }

  get (streamId: string): Session | undefined {
    return this.sessions.get(streamId)
  }

  /** Records the end of a generation and forgets it. */
  finish (session: Session, status: Exclude<SessionStatus, 'running'>, timeToFirstTokenMs?: number): void {
    if (session.status !== 'running') return
    session.status = status
    this.sessions.delete(session.streamId)
    const stats = this.agentStats(session.agent)
    if (status === 'completed') stats.completed++
    else if (status === 'cancelled') stats.cancelled++
    else if (status === 'interrupted') stats.interrupted++
    else stats.failed++
    stats.finished++
    stats.durationMs += Date.now() - session.startedAt
    if (timeToFirstTokenMs !== undefined) { stats.ttftMs += timeToFirstTokenMs; stats.ttftCount++ }
  }

  countToken (agent: string): void {
    this.agentStats(agent).tokens++
  }

  active (agent?: string): number {
    let count = 0
    for (const session of this.sessions.values()) if (!agent || session.agent === agent) count++
    return count
  }

  /** Running generations no one has read for `idleMs` (no local connection since then). */
  idle (idleMs: number, lastActivity: (s: Session) => number): Session[] {
    const now = Date.now()
    return [...this.sessions.values()].filter(s => s.connections === 0 && now - lastActivity(s) >= idleMs)
  }

  statsFor (agent: string): AgentStreamStats {
    const s = this.agentStats(agent)
    return {
      agent,
      active: this.active(agent),
      started: s.started,
      completed: s.completed,
      cancelled: s.cancelled,
      failed: s.failed,
      interrupted: s.interrupted,
      averageDurationMs: s.finished ? Math.round(s.durationMs / s.finished) : 0,
      averageTimeToFirstTokenMs: s.ttftCount ? Math.round(s.ttftMs / s.ttftCount) : null,
      tokens: s.tokens
    }
  }

  private agentStats (agent: string) {
    let stats = this.stats.get(agent)
    if (!stats) { stats = emptyStats(agent); this.stats.set(agent, stats) }
    return stats
  }
}

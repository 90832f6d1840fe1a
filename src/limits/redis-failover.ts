// The one Redis circuit breaker (DESIGN §15), shared by every Redis use: rate limits, budgets, the
// response cache, the stream event log, stream slots and tickets, agent statistics, the cancel bus and
// the login throttle. The redis plugin creates it and attaches it to the client; components find it with
// `breakerFor(redis)`. Closed: operations go to Redis (each bounded by the client's command timeout).
// A failure that says Redis is unreachable or too slow opens it: every component uses its fallback at
// once, nothing waits on Redis, and after `retryMs` one PING probes (again every `retryMs` until one
// answers), which closes it. A command timeout blames Redis only if this process was reading its socket for
// at least half the command timeout after sending it (LoopWatch): one that timed out because the event loop
// was blocked (a long synchronous task, a GC pause) is confirmed with a PING first, judged the same way, so
// the breaker judges Redis, not the loop, and a frozen Redis still opens it while the loop keeps stalling.
// Warnings are rate-limited: one line per component per `warnIntervalMs`, with the count suppressed.
import type { Redis } from 'ioredis'
import { LoopWatch } from './loop-watch.js'

export type Backend = 'redis' | 'memory'
type Log = { warn(obj: object, msg: string): void, info(obj: object, msg: string): void }

export interface BreakerOptions {
  /** Called on every switch: to 'memory' with the reason, back to 'redis' when it answers again. */
  onSwitch?(to: Backend, reason: string): void
  log?: Log
  /** At most one warning line per component per this period (default 10 s). */
  warnIntervalMs?: number
}

/** Errors that prove Redis answered (or that the caller's own code failed): they never open the breaker. */
const ANSWERED = new Set(['ReplyError', 'SyntaxError', 'TypeError', 'RangeError'])
const isTimeout = (error: Error) => error.message === 'Command timed out'

export class RedisBreaker {
  private opened: boolean
  private switchedAt = Date.now()
  private lastError = ''
  private opens = 0
  private stallsIgnored = 0
  private confirming = false
  private probeTimer: NodeJS.Timeout | null = null
  private readonly watch: LoopWatch
  private readonly commandTimeoutMs: number | undefined
  private readonly warned = new Map<string, { at: number; suppressed: number }>()
  private readonly listeners: Array<(to: Backend, reason: string) => void> = []

  constructor (
    readonly redis: Redis | null,
    readonly retryMs: number,
    private readonly options: BreakerOptions = {}
  ) {
    this.opened = redis === null
    // Ticks fine enough to tell a timeout's window apart from a stall (the timeout can be as low as 20 ms).
    this.commandTimeoutMs = redis?.options.commandTimeout
    this.watch = new LoopWatch(Math.max(5, Math.min(20, Math.floor((this.commandTimeoutMs ?? 80) / 4))))
    if (options.onSwitch) this.listeners.push(options.onSwitch.bind(options))
    // A reconnected client is probed at once rather than at the next retry.
    redis?.on('ready', () => {
      if (this.opened) this.probe()
    })
  }

  /** Listens to every open ('memory') and close ('redis'). */
  onSwitch (listener: (to: Backend, reason: string) => void): void {
    this.listeners.push(listener)
  }

  /** Whether the next operation may go to Redis (closed, and the client connected). */
  usable (): boolean {
    if (!this.redis || this.opened) return false
    if (!this.accepts(this.redis)) {
      this.trip(`redis ${this.redis.status}`)
      return false
    }
    return true
  }

  /**
   * Ready; or never connected yet (lazy: the command connects, and fails at once without an offline queue);
   * or, for a client with an offline queue, connecting: its commands wait, bounded by their timeout.
   */
  private accepts (redis: Redis): boolean {
    const { status } = redis
    if (status === 'ready' || status === 'wait') return true
    return redis.options.enableOfflineQueue !== false && status !== 'end' && status !== 'close'
  }

  /** Runs `onRedis`, or `onMemory` when the breaker is open or the Redis call fails (which it reports). */
  async run<T>(onRedis: (redis: Redis) => Promise<T>, onMemory: () => T | Promise<T>, component = 'redis'): Promise<T> {
    if (!this.usable() || !this.redis) return onMemory()
    const started = performance.now()
    try {
      return await onRedis(this.redis)
    } catch (error) {
      this.failure(component, error, started)
      return onMemory()
    }
  }

  /**
   * Runs `onRedis` (skipped while open); a failure is reported. The promise settles when the call does and
   * never rejects, so a caller may wait for it (a slot given back) or not (a lease refreshed).
   */
  fire (component: string, onRedis: (redis: Redis) => Promise<unknown>): Promise<void> {
    if (!this.usable() || !this.redis) return Promise.resolve()
    const started = performance.now()
    return onRedis(this.redis).then(() => {}, error => { this.failure(component, error, started) })
  }

  /**
   * Reports a failed Redis call started at `started` (performance.now(); without it, a timeout is always
   * confirmed). Opens the breaker unless Redis answered (a reply error) or it timed out without Redis having
   * had the time to answer (then a PING decides). Returns whether the error was about Redis' availability;
   * the component's warning is logged, rate-limited.
   */
  failure (component: string, error: unknown, started = performance.now()): boolean {
    const err = error instanceof Error ? error : new Error(String(error))
    if (ANSWERED.has(err.name)) return false
    // A timeout the loop caused is not logged unless a PING confirms it (then the breaker opens, and says so).
    if (this.redis && !this.opened && isTimeout(err) && !this.redisHadTime(started)) {
      this.confirm(component, err)
      return true
    }
    this.warn(component, err)
    if (this.redis && !this.opened) this.trip(`${component}: ${err.message}`)
    return true
  }

  /** One warning line per component per period; the next one says how many were suppressed. */
  warn (component: string, error: Error): void {
    const now = Date.now()
    const entry = this.warned.get(component)
    if (entry && now - entry.at < (this.options.warnIntervalMs ?? 10_000)) {
      entry.suppressed++
      return
    }
    this.warned.set(component, { at: now, suppressed: 0 })
    this.options.log?.warn(
      { component, err: error.message, suppressed: entry?.suppressed ?? 0 },
      `redis: ${component} failed; using its fallback`
    )
  }

  /** What is in use now, since when, and why (for /api/health and the metrics). */
  state (): {
    backend: Backend
    since: number
    reason: string
    configured: boolean
    opens: number
    stallsIgnored: number
  } {
    return {
      backend: this.opened ? 'memory' : 'redis',
      since: this.switchedAt,
      reason: this.lastError,
      configured: this.redis !== null,
      opens: this.opens,
      stallsIgnored: this.stallsIgnored
    }
  }

  close (): void {
    this.watch.stop()
    if (this.probeTimer) clearTimeout(this.probeTimer)
    this.probeTimer = null
  }

  /**
   * Whether a command sent at `started` that timed out was given its chance: this process read the socket
   * for at least half the command timeout after sending it (a blocked loop reads nothing).
   */
  private redisHadTime (started: number): boolean {
    return this.watch.listenedSince(started) >= (this.commandTimeoutMs ?? 0) / 2
  }

  /** A timeout the loop may have caused: open only if a PING, given its chance, fails too. */
  private confirm (component: string, error: Error): void {
    if (this.confirming || !this.redis) return
    this.confirming = true
    const started = performance.now()
    this.redis
      .ping()
      .then(
        () => {
          this.stallsIgnored++
        },
        (pingError: Error) => {
          if (isTimeout(pingError) && !this.redisHadTime(started)) this.stallsIgnored++
          else this.trip(`${component}: ${error.message} (confirmed by PING: ${pingError.message})`)
        }
      )
      .finally(() => {
        this.confirming = false
      })
  }

  private trip (reason: string): void {
    this.lastError = reason
    if (this.opened) return
    this.opened = true
    this.opens++
    this.switchedAt = Date.now()
    this.options.log?.warn(
      { reason, retryMs: this.retryMs },
      'redis: circuit open; every component uses its in-memory fallback until a probe answers'
    )
    for (const listener of this.listeners) listener('memory', reason)
    this.schedule()
  }

  private schedule (): void {
    if (this.probeTimer) clearTimeout(this.probeTimer)
    this.probeTimer = setTimeout(() => {
      this.probeTimer = null
      this.probe()
    }, this.retryMs)
    this.probeTimer.unref()
  }

  /** The one probe: a PING; success closes the breaker, failure waits another retry period. */
  private probe (): void {
    const redis = this.redis
    if (!redis || !this.opened || this.confirming) return
    if (!this.accepts(redis)) {
      this.schedule()
      return
    }
    this.confirming = true
    redis.ping().then(
      () => {
        this.confirming = false
        if (!this.opened) return
        const downMs = Date.now() - this.switchedAt
        this.opened = false
        this.lastError = ''
        this.switchedAt = Date.now()
        this.options.log?.info({ downMs }, 'redis: circuit closed; shared state in use again')
        for (const listener of this.listeners) listener('redis', 'redis answered again')
      },
      (error: Error) => {
        this.confirming = false
        this.lastError = `probe: ${error.message}`
        this.schedule()
      }
    )
  }
}

/** The name this module had when it served the rate limits alone. */
export { RedisBreaker as RedisFailover }

const attached = new WeakMap<Redis, RedisBreaker>()

/** Makes `breaker` the one every component using `redis` finds (the redis plugin does this). */
export function attachBreaker (redis: Redis, breaker: RedisBreaker): void {
  attached.set(redis, breaker)
}

/** The breaker of this client; a client used outside the app (tests) gets its own with defaults. */
export function breakerFor (redis: Redis): RedisBreaker {
  let breaker = attached.get(redis)
  if (!breaker) {
    breaker = new RedisBreaker(redis, 1000)
    attached.set(redis, breaker)
  }
  return breaker
}

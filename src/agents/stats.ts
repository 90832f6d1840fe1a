// Per-agent statistics from what the agents actually did: calls, outcomes, cache hits and misses,
// latency, tokens, cost (from provider calls), by method and by model, plus active streams and a
// recent-error-rate health verdict. Framework-free; the agent-stats plugin feeds it from the agent
// service's hooks.
//
// Across replicas (decision): the counters are shared. Each agent has one Redis hash. A record only
// updates this replica's counters and its pending deltas; stats-flush.ts sends the pending deltas of
// every agent in one pipeline per AGENT_STATS_FLUSH_MS (about once a second), never on the request
// path. Reads take HGETALL plus this replica's deltas not yet in Redis, so any replica reports cluster
// totals (`scope: 'cluster'`) — exact for its own calls at once, other replicas' calls within one
// period. Three figures stay per replica, honestly labelled: latency percentiles (percentiles cannot be
// summed, and a shared sketch would cost a round trip per call — the cluster-wide average is exact), the
// health window (health is this replica's view of its provider path) and active streams (a gauge a
// crashed replica would leave stale). Every replica also keeps all counters locally; when Redis is
// absent or unreadable the local figures are served with `scope: 'replica'`. Deltas recorded while Redis
// is down stay pending and reach the cluster totals when it answers again (stats-flush.ts says what a
// crash loses). A reset deletes the hash and stamps `meta|resetAt`; other replicas drop their local
// figures, and their pending deltas from before the stamp, when they next read it. Every Redis call
// goes through the Redis circuit breaker: while it is open nothing is sent (the local figures are served).
import type { Redis } from 'ioredis'
import { breakerFor } from '../limits/redis-failover.js'
import type { InvocationRecord, LlmCallRecord } from './types.js'
import { TOTAL, invocationIncrements, llmIncrements, outcomeOf, type Increment } from './stats-counters.js'
import { StatsFlush, type LastError } from './stats-flush.js'
import {
  detailOf,
  summaryOf,
  type AgentHealth,
  type AgentStatsDetail,
  type AgentStatsSummary,
  type StatsSource
} from './stats-view.js'

export type { AgentHealth, AgentStatsDetail, AgentStatsSummary }

export interface AgentStatsOptions {
  agents: readonly string[]
  redis?: Redis | null
  keyPrefix: string
  healthWindowMs: number
  minCalls: number
  degradedRate: number
  unhealthyRate: number
  /** Latency samples kept per agent (and a fifth of that per method) for percentiles. */
  latencySamples?: number
  /** Period of the flush of pending deltas to Redis (default 1000 ms). */
  flushMs?: number
  log?: { warn(obj: object, msg: string): void }
}

interface LocalAgent {
  counters: Map<string, number>
  latencies: number[]
  methodLatencies: Map<string, number[]>
  window: Array<{ at: number, error: boolean }>
  activeStreams: number
  createdAt: number
  resetAt: number
  lastCallAt: number | null
  lastError: LastError | null
}

const COMPONENT = 'agent stats'

function pushBounded (list: number[], value: number, max: number): void {
  list.push(value)
  if (list.length > max) list.splice(0, list.length - max)
}

export class AgentStats {
  private readonly local = new Map<string, LocalAgent>()
  private readonly samples: number
  /** Pending deltas and their periodic flush; null without Redis. */
  private readonly shared: StatsFlush | null

  constructor (private readonly options: AgentStatsOptions) {
    this.samples = options.latencySamples ?? 1000
    for (const agent of options.agents) this.local.set(agent, this.fresh(Date.now()))
    const { redis, keyPrefix, log } = options
    this.shared = redis
      ? new StatsFlush({ redis, keyPrefix, log, flushMs: options.flushMs ?? 1000, keyOf: agent => this.key(agent) })
      : null
  }

  get agents (): readonly string[] { return this.options.agents }

  recordInvocation (record: InvocationRecord): void {
    const agent = this.agent(record.agent)
    const now = Date.now()
    const outcome = outcomeOf(record)
    agent.lastCallAt = now
    if (outcome !== 'rejected') {
      pushBounded(agent.latencies, record.durationMs, this.samples)
      const perMethod = agent.methodLatencies.get(record.method) ?? []
      pushBounded(perMethod, record.durationMs, Math.max(10, Math.round(this.samples / 5)))
      agent.methodLatencies.set(record.method, perMethod)
    }
    if (outcome === 'success' || outcome === 'error') {
      agent.window.push({ at: now, error: outcome === 'error' })
      if (agent.window.length > 10_000) agent.window.shift()
    }
    let error: LastError | null = null
    if (outcome === 'error' && record.error) {
      error = { code: record.error.code, message: record.error.message, at: new Date(now).toISOString() }
      agent.lastError = error
    }
    this.apply(record.agent, invocationIncrements(record), { error })
  }

  recordLlmCall (record: LlmCallRecord): void {
    this.apply(record.agent, llmIncrements(record))
  }

  streamStarted (agentName: string): void {
    this.agent(agentName).activeStreams++
    this.apply(agentName, [[`${TOTAL}|streamsStarted`, 1]])
  }

  streamEnded (agentName: string): void {
    const agent = this.agent(agentName)
    agent.activeStreams = Math.max(0, agent.activeStreams - 1)
  }

  async summary (agentName: string): Promise<AgentStatsSummary> {
    return summaryOf(await this.source(agentName))
  }

  async detail (agentName: string): Promise<AgentStatsDetail> {
    return detailOf(await this.source(agentName))
  }

  /** Error rate over the recent window of this replica; judged only from `minCalls` calls on. */
  health (agentName: string): AgentHealth {
    const { healthWindowMs, minCalls, degradedRate, unhealthyRate } = this.options
    const agent = this.agent(agentName)
    const since = Date.now() - healthWindowMs
    while (agent.window.length > 0 && agent.window[0].at < since) agent.window.shift()
    const calls = agent.window.length
    const errors = agent.window.filter(e => e.error).length
    const errorRate = calls === 0 ? 0 : errors / calls
    const base = {
      errorRate,
      calls,
      errors,
      windowMs: healthWindowMs,
      minCalls,
      thresholds: { degraded: degradedRate, unhealthy: unhealthyRate }
    }
    const pct = `${(errorRate * 100).toFixed(1)}% errors (${errors}/${calls})`
    if (calls < minCalls) {
      return {
        ...base,
        status: 'healthy',
        message: `${calls} call(s) in the window, fewer than ${minCalls}: not judged`
      }
    }
    if (errorRate > unhealthyRate) return { ...base, status: 'unhealthy', message: `${pct} > ${unhealthyRate * 100}%` }
    if (errorRate > degradedRate) return { ...base, status: 'degraded', message: `${pct} > ${degradedRate * 100}%` }
    return { ...base, status: 'healthy', message: pct }
  }

  /** Sends the pending deltas to Redis now (also done every period); never rejects. */
  async flush (): Promise<void> {
    await this.shared?.flush()
  }

  /** Stops the periodic flush after a last one (graceful stop). */
  async close (): Promise<void> {
    await this.shared?.close()
  }

  /** Pipelines sent to Redis so far, and increments left out of them because the pending buffer was full. */
  flushStats (): { flushes: number, dropped: number } {
    return { flushes: this.shared?.flushes ?? 0, dropped: this.shared?.dropped ?? 0 }
  }

  /** Zeroes one agent's statistics (locally, its pending deltas, and the shared counters). */
  async reset (agentName: string): Promise<void> {
    const now = Date.now()
    this.local.set(agentName, this.fresh(now))
    this.shared?.drop(agentName)
    const redis = this.usableRedis()
    if (!redis) return
    await redis
      .multi()
      .del(this.key(agentName))
      .hset(this.key(agentName), 'meta|resetAt', String(now), 'meta|createdAt', String(now))
      .exec()
      .catch((error: Error) => {
        if (!breakerFor(redis).failure(COMPONENT, error)) {
          this.options.log?.warn({ err: error.message }, 'agent stats: shared reset failed')
        }
      })
  }

  /** The Redis client when the breaker lets calls through, else null. */
  private usableRedis (): Redis | null {
    const redis = this.options.redis
    return redis && breakerFor(redis).usable() ? redis : null
  }

  private fresh (now: number): LocalAgent {
    return {
      counters: new Map(),
      latencies: [],
      methodLatencies: new Map(),
      window: [],
      activeStreams: 0,
      createdAt: now,
      resetAt: now,
      lastCallAt: null,
      lastError: null
    }
  }

  private agent (name: string): LocalAgent {
    let agent = this.local.get(name)
    if (!agent) {
      agent = this.fresh(Date.now())
      this.local.set(name, agent)
    }
    return agent
  }

  private key (agent: string): string {
    return `${this.options.keyPrefix}agent-stats:${agent}`
  }

  private apply (agentName: string, increments: Increment[], call?: { error: LastError | null }): void {
    const agent = this.agent(agentName)
    for (const [key, delta] of increments) agent.counters.set(key, (agent.counters.get(key) ?? 0) + delta)
    this.shared?.add(agentName, increments, Date.now(), agent.createdAt, call)
  }

  /**
   * Cluster counters from Redis when it answers, plus this replica's deltas that the read cannot include
   * (taken when the HGETALL is sent: a flush sent before it is applied first, one sent after is not);
   * else this replica's counters. Percentiles and gauges are local.
   */
  private async source (agentName: string): Promise<StatsSource> {
    const agent = this.agent(agentName)
    const local: StatsSource = {
      agent: agentName,
      scope: 'replica',
      counters: [...agent.counters],
      since: agent.resetAt,
      lastCallAt: agent.lastCallAt,
      lastError: agent.lastError,
      activeStreams: agent.activeStreams,
      latencies: agent.latencies,
      methodLatencies: agent.methodLatencies
    }
    const redis = this.usableRedis()
    if (!redis) return local
    let hash: Record<string, string>
    const started = performance.now()
    const read = redis.hgetall(this.key(agentName))
    const unsent = this.shared?.unsent(agentName) ?? []
    try {
      hash = await read
    } catch (error) {
      breakerFor(redis).failure(COMPONENT, error, started)
      return local
    }
    const resetAt = Number(hash['meta|resetAt'] ?? 0)
    if (resetAt > agent.resetAt) {
      const fresh = this.fresh(resetAt)
      fresh.activeStreams = agent.activeStreams
      this.local.set(agentName, fresh)
      this.shared?.drop(agentName, resetAt)
      return this.source(agentName)
    }
    const counters = Object.entries(hash)
      .filter(([k]) => !k.startsWith('meta|'))
      .map(([k, v]): [string, number] => [k, Number(v)])
    counters.push(...unsent) // unflatten sums repeated keys
    const shared = hash['meta|lastCallAt'] ? Number(hash['meta|lastCallAt']) : null
    const lastCallAt = Math.max(shared ?? 0, agent.lastCallAt ?? 0) || null
    let lastError = local.lastError
    try {
      const other: LastError | null = hash['meta|lastError'] ? JSON.parse(hash['meta|lastError']) : null
      if (other && (!lastError || other.at > lastError.at)) lastError = other
    } catch {}
    const since = Number(hash['meta|resetAt'] ?? hash['meta|createdAt'] ?? agent.resetAt)
    return { ...local, scope: 'cluster', counters, since, lastCallAt, lastError }
  }
}

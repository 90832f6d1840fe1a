// Per-agent statistics from what the agents actually did: calls, outcomes, cache hits and misses,
// latency, tokens, cost (from provider calls), by method and by model, plus active streams and a
// recent-error-rate health verdict. Framework-free; the agent-stats plugin feeds it from the agent
// service's hooks.
//
// Across replicas (decision): the counters are shared. Each agent has one Redis hash; every record is
// one pipelined, fire-and-forget batch of HINCRBY/HINCRBYFLOAT (never awaited on the request path),
// and reads take HGETALL, so any replica reports cluster totals (`scope: 'cluster'`). Three figures
// stay per replica, honestly labelled: latency percentiles (percentiles cannot be summed, and a
// shared sketch would cost a round trip per call — the cluster-wide average is exact), the health
// window (health is this replica's view of its provider path) and active streams (a gauge a crashed
// replica would leave stale). Every replica also keeps all counters locally; when Redis is absent or
// unreadable the local figures are served with `scope: 'replica'`. Writes made while Redis is down
// are missing from the cluster totals. A reset deletes the hash and stamps `meta|resetAt`; other
// replicas drop their local figures when they next read a newer stamp. Every Redis call goes through
// the Redis circuit breaker: while it is open nothing is sent (the local figures are served).
import type { Redis } from 'ioredis'
import { breakerFor } from '../limits/redis-failover.js'
import type { InvocationRecord, LlmCallRecord } from './types.js'
import {
  FLOAT_FIELDS,
  TOTAL,
  invocationIncrements,
  isCounterField,
  llmIncrements,
  outcomeOf,
  type Increment
} from './stats-counters.js'
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
  lastError: { code: string, message: string, at: string } | null
}

const COMPONENT = 'agent stats'

function pushBounded (list: number[], value: number, max: number): void {
  list.push(value)
  if (list.length > max) list.splice(0, list.length - max)
}

export class AgentStats {
  private readonly local = new Map<string, LocalAgent>()
  private readonly samples: number

  constructor (private readonly options: AgentStatsOptions) {
    this.samples = options.latencySamples ?? 1000
    for (const agent of options.agents) this.local.set(agent, this.fresh(Date.now()))
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
    const meta: Record<string, string> = { 'meta|lastCallAt': String(now) }
    if (outcome === 'error' && record.error) {
      agent.lastError = { ...record.error, at: new Date(now).toISOString() }
      meta['meta|lastError'] = JSON.stringify(agent.lastError)
    }
    this.apply(record.agent, invocationIncrements(record), meta)
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

  /** Zeroes one agent's statistics (locally, and the shared counters). */
  async reset (agentName: string): Promise<void> {
    const now = Date.now()
    this.local.set(agentName, this.fresh(now))
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

  private apply (agentName: string, increments: Increment[], meta: Record<string, string> = {}): void {
    const agent = this.agent(agentName)
    for (const [key, delta] of increments) agent.counters.set(key, (agent.counters.get(key) ?? 0) + delta)
    const redis = this.usableRedis()
    if (!redis) return
    const key = this.key(agentName)
    const pipeline = redis.pipeline()
    for (const [field, delta] of increments) {
      const name = field.slice(field.lastIndexOf('|') + 1)
      if (isCounterField(name) && FLOAT_FIELDS.has(name)) pipeline.hincrbyfloat(key, field, delta)
      else pipeline.hincrby(key, field, delta)
    }
    pipeline.hsetnx(key, 'meta|createdAt', String(agent.createdAt))
    if (Object.keys(meta).length > 0) pipeline.hset(key, meta)
    const started = performance.now()
    pipeline
      .exec()
      .then(
        results => results?.find(([error]) => error)?.[0],
        error => (error instanceof Error ? error : new Error(String(error)))
      )
      .then(error => {
        if (error && !breakerFor(redis).failure(COMPONENT, error, started)) {
          this.options.log?.warn({ err: error.message }, 'agent stats: shared counters not updated')
        }
      })
  }

  /** Cluster counters from Redis when it answers, else this replica's; percentiles and gauges are local. */
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
    try {
      hash = await redis.hgetall(this.key(agentName))
    } catch (error) {
      breakerFor(redis).failure(COMPONENT, error, started)
      return local
    }
    const resetAt = Number(hash['meta|resetAt'] ?? 0)
    if (resetAt > agent.resetAt) {
      const fresh = this.fresh(resetAt)
      fresh.activeStreams = agent.activeStreams
      this.local.set(agentName, fresh)
      return this.source(agentName)
    }
    const counters = Object.entries(hash)
      .filter(([k]) => !k.startsWith('meta|'))
      .map(([k, v]): [string, number] => [k, Number(v)])
    const lastCallAt = hash['meta|lastCallAt'] ? Number(hash['meta|lastCallAt']) : null
    let lastError = local.lastError
    try { lastError = hash['meta|lastError'] ? JSON.parse(hash['meta|lastError']) : lastError } catch {}
    const since = Number(hash['meta|resetAt'] ?? hash['meta|createdAt'] ?? agent.resetAt)
    return { ...local, scope: 'cluster', counters, since, lastCallAt, lastError }
  }
}

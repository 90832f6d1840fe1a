// Per-agent statistics (src/agents/stats.ts) fed by the agent service's hooks, and the `agents`
// component of /api/health. Decorates app.agentStats; the streams plugin reports open streams with
// app.agentStats.streamStarted(agent) / streamEnded(agent).
//
// Health: each agent's error rate over the last AGENT_HEALTH_WINDOW_MS on this replica (client
// rejections and cancellations excluded) — above AGENT_HEALTH_DEGRADED_RATE (20 %) degraded, above
// AGENT_HEALTH_UNHEALTHY_RATE (50 %) unhealthy, never judged on fewer than AGENT_HEALTH_MIN_CALLS (5)
// calls. The component reports the worst agent. It is not critical: a failing agent degrades
// /api/health without making the whole service 503, since the other agents and cached answers work.
//
// With Redis, the shared counters are flushed every AGENT_STATS_FLUSH_MS and once more in onClose (after
// the last request; it runs before the redis plugin's, which was registered earlier), so a graceful stop
// loses nothing.
import fp from 'fastify-plugin'
import { AgentStats } from '../agents/stats.js'
import type { HealthStatus } from '../schemas/common.js'

declare module 'fastify' {
  interface FastifyInstance {
    agentStats: AgentStats
  }
}

const rank: Record<HealthStatus, number> = { healthy: 0, degraded: 1, unhealthy: 2 }

export default fp(async function agentStats (app) {
  const config = app.config
  const stats = new AgentStats({
    agents: Object.keys(app.agents.definitions),
    redis: app.redis,
    keyPrefix: config.REDIS_KEY_PREFIX,
    healthWindowMs: config.AGENT_HEALTH_WINDOW_MS,
    minCalls: config.AGENT_HEALTH_MIN_CALLS,
    degradedRate: config.AGENT_HEALTH_DEGRADED_RATE,
    unhealthyRate: config.AGENT_HEALTH_UNHEALTHY_RATE,
    flushMs: config.AGENT_STATS_FLUSH_MS,
    log: app.log.child({ component: 'agent-stats' })
  })
  app.decorate('agentStats', stats)
  app.addHook('onClose', async () => { await stats.close() })

  app.agents.addHooks({
    onLlmCall: record => stats.recordLlmCall(record),
    onInvocation: record => stats.recordInvocation(record)
  })

  app.health.register('agents', async () => {
    const verdicts = stats.agents.map(agent => ({ agent, ...stats.health(agent) }))
    let status: HealthStatus = 'healthy'
    for (const v of verdicts) if (rank[v.status] > rank[status]) status = v.status
    return {
      status,
      message: verdicts.map(v => `${v.agent} ${v.status}`).join(', '),
      details: Object.fromEntries(
        verdicts.map(v => [
          v.agent,
          { status: v.status, errorRate: v.errorRate, calls: v.calls, errors: v.errors, message: v.message }
        ])
      )
    }
  })
}, { name: 'agent-stats', dependencies: ['config', 'redis', 'health', 'agents'] })

// Component health registry and process lifecycle. Plugins register checks (database, redis, llm,
// agents…); /api/health runs them in parallel, each under a timeout, and caches the result with its
// status code. Lifecycle state drives readiness; an event-loop lag sampler drives liveness.
import fp from 'fastify-plugin'
import { messageOf } from '../errors.js'
import type { ComponentHealth, HealthStatus } from '../schemas/common.js'

export interface CheckResult { status: HealthStatus, message: string, details?: unknown }
export type HealthCheck = () => Promise<CheckResult>

export interface HealthReport {
  statusCode: 200 | 503
  body: {
    status: HealthStatus
    timestamp: string
    uptimeSeconds: number
    version: string
    components: Record<string, ComponentHealth>
  }
}

type LifecycleState = 'starting' | 'ready' | 'shutting-down'

declare module 'fastify' {
  interface FastifyInstance {
    health: {
      /** critical: an unhealthy component makes the whole service unhealthy (503); otherwise degraded. */
      register(name: string, check: HealthCheck, options?: { critical?: boolean }): void
      run(options?: { fresh?: boolean }): Promise<HealthReport>
      /** Readiness checks: return a reason string when not ready. */
      addReadinessCheck(check: () => Promise<string | null>): void
      readiness(): Promise<{ ready: boolean, reason?: string }>
      eventLoopDelayMs(): number
    }
    lifecycle: {
      state: LifecycleState
      /** Flips readiness to 503 at once; streams and other owners react in preClose. */
      beginShutdown(): void
    }
  }
}

const rank: Record<HealthStatus, number> = { healthy: 0, degraded: 1, unhealthy: 2 }

function withTimeout<T> (promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout
  return Promise.race([
    promise,
    new Promise<T>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms)
    })
  ]).finally(() => clearTimeout(timer))
}

export default fp(async function health (app, opts: { version: string }) {
  const { HEALTH_CHECK_TIMEOUT_MS, HEALTH_CACHE_TTL_MS } = app.config
  const checks = new Map<string, { check: HealthCheck, critical: boolean }>()
  const readinessChecks: Array<() => Promise<string | null>> = []
  let cached: { at: number, report: HealthReport } | null = null

  // Event-loop delay: how late a 50 ms timer fires, kept as the maximum of the current and the previous
  // second, plus the stall in progress (a probe answered right after a block sees it before the timer
  // does). perf_hooks' monitorEventLoopDelay was not used: its reset() drops the sample that spans a stall.
  const SAMPLE_MS = 50
  let expected = performance.now() + SAMPLE_MS
  let bucketStart = performance.now()
  let currentMaxMs = 0
  let previousMaxMs = 0
  const sampler = setInterval(() => {
    const now = performance.now()
    const lag = Math.max(0, now - expected)
    expected = now + SAMPLE_MS
    if (now - bucketStart >= 1000) {
      previousMaxMs = currentMaxMs
      currentMaxMs = 0
      bucketStart = now
    }
    currentMaxMs = Math.max(currentMaxMs, lag)
  }, SAMPLE_MS)
  sampler.unref()

  async function runOne (name: string, check: HealthCheck): Promise<ComponentHealth> {
    const started = performance.now()
    try {
      const result = await withTimeout(check(), HEALTH_CHECK_TIMEOUT_MS)
      return { ...result, latencyMs: Math.round(performance.now() - started) }
    } catch (error) {
      return { status: 'unhealthy', message: messageOf(error), latencyMs: Math.round(performance.now() - started) }
    }
  }

  const lifecycle: { state: LifecycleState, beginShutdown(): void } = {
    state: 'starting',
    beginShutdown () { lifecycle.state = 'shutting-down' }
  }
  app.decorate('lifecycle', lifecycle)

  app.decorate('health', {
    register (name, check, options = {}) {
      checks.set(name, { check, critical: options.critical ?? false })
    },
    async run (options = {}) {
      if (!options.fresh && cached && Date.now() - cached.at < HEALTH_CACHE_TTL_MS) return cached.report
      const registered = [...checks.entries()]
      const results = await Promise.all(registered.map(([name, { check }]) => runOne(name, check)))
      const components: Record<string, ComponentHealth> = {}
      const overall = registered.reduce<HealthStatus>((worst, [name, { critical }], i) => {
        const result = results[i]
        components[name] = result
        const effective: HealthStatus = result.status === 'unhealthy' && !critical ? 'degraded' : result.status
        return rank[effective] > rank[worst] ? effective : worst
      }, 'healthy')
      const report: HealthReport = {
        statusCode: overall === 'unhealthy' ? 503 : 200,
        body: {
          status: overall,
          timestamp: new Date().toISOString(),
          uptimeSeconds: Math.round(process.uptime()),
          version: opts.version,
          components
        }
      }
      cached = { at: Date.now(), report }
      return report
    },
    addReadinessCheck (check) { readinessChecks.push(check) },
    async readiness () {
      if (app.lifecycle.state !== 'ready') return { ready: false, reason: app.lifecycle.state }
      const reasons = await Promise.all(readinessChecks.map(check =>
        withTimeout(check(), HEALTH_CHECK_TIMEOUT_MS).catch((error: Error) => error.message)))
      const reason = reasons.find(Boolean)
      return reason ? { ready: false, reason } : { ready: true }
    },
    eventLoopDelayMs: () => Math.max(previousMaxMs, currentMaxMs, performance.now() - expected)
  })

  app.addHook('onReady', async () => {
    app.lifecycle.state = 'ready'
    // Start-up work (WASM compilation, migrations) is not a stalled loop: liveness counts from here.
    expected = performance.now() + SAMPLE_MS
    currentMaxMs = previousMaxMs = 0
  })
  app.addHook('preClose', async () => { app.lifecycle.beginShutdown() })
  app.addHook('onClose', async () => {
    clearInterval(sampler)
  })
}, { name: 'health', dependencies: ['config'] })

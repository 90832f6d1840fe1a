// Prometheus metrics: one registry per app (so several apps can live in one process), fastify-metrics
// for default process metrics, one onResponse hook for the request counter and duration histogram, and
// app.meters for the metrics other plugins add. Labels use route templates only, so cardinality stays
// bounded. `startMetricsListener` serves the registry on a separate port (METRICS_PORT) with neither auth nor
// rate limits, for Prometheus.
import { createServer, type Server } from 'node:http'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import fastifyMetricsModule from 'fastify-metrics'
import promClient, { Counter, Gauge, Histogram, Registry } from 'prom-client'

type Labels<L extends string> = readonly L[]

declare module 'fastify' {
  interface FastifyInstance {
    meters: {
      registry: Registry
      prefix: string
      counter<L extends string>(name: string, help: string, labelNames?: Labels<L>): Counter<L>
      gauge<L extends string>(name: string, help: string, labelNames?: Labels<L>): Gauge<L>
      histogram<L extends string>(name: string, help: string, labelNames?: Labels<L>, buckets?: number[]): Histogram<L>
    }
  }
}

const NOT_FOUND_ROUTE = '__not_found__'
const UNTIMED_METHODS = new Set(['HEAD', 'OPTIONS', 'TRACE', 'CONNECT'])
/** Label sets kept for reuse (routes × methods × status codes stays far below this). */
const MAX_SERIES = 10_000
interface Series {
  counted: { method: string, route: string, status_code: string }
  timed: { method: string, route: string, status_code: number } | null
}
/** prom-client's unlabelled duplicates of nodejs_active_{handles,requests,resources}: gauges named like
 * counters, which promtool rejects. The labelled gauges of the same name without `_total` remain (sum them). */
const MISNAMED_GAUGES = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']
// fastify-metrics is CommonJS with a `default` export.
const fastifyMetrics = fastifyMetricsModule.default

export default fp(async function metrics (app) {
  const prefix = app.config.METRICS_PREFIX
  const registry = new Registry()

  // fastify-metrics gives the default process metrics only: its per-route histogram took an onRequest and an
  // onResponse hook, a WeakMap entry, a timer closure and label objects per request. The request metrics are
  // one onResponse hook below (issue 16), with the same names, labels and buckets.
  await app.register(fastifyMetrics, {
    name: 'fastifyMetrics',
    endpoint: null,
    promClient: { ...promClient, register: registry } as unknown as typeof promClient,
    defaultMetrics: { enabled: true, register: registry, prefix },
    routeMetrics: { enabled: false }
  })

  for (const name of MISNAMED_GAUGES) registry.removeSingleMetric(prefix + name)

  const make = <T>(name: string, create: (fullName: string) => T): T =>
    (registry.getSingleMetric(prefix + name) as T | undefined) ?? create(prefix + name)

  app.decorate('meters', {
    registry,
    prefix,
    counter: (name, help, labelNames = []) =>
      make(name, n => new Counter({ name: n, help, labelNames, registers: [registry] })),
    gauge: (name, help, labelNames = []) =>
      make(name, n => new Gauge({ name: n, help, labelNames, registers: [registry] })),
    histogram: (name, help, labelNames = [], buckets) =>
      make(
        name,
        n => new Histogram({ name: n, help, labelNames, registers: [registry], ...(buckets ? { buckets } : {}) })
      )
  })

  // The per-process stream cap, exported so alerts can compare stream_sessions_active with it.
  // Set at each scrape, so a metrics reset cannot zero it.
  const maxStreams = app.config.MAX_CONCURRENT_STREAMS
  make(
    'stream_sessions_max',
    name =>
      new Gauge({
        name,
        help: 'Open SSE streams allowed per process (MAX_CONCURRENT_STREAMS)',
        registers: [registry],
        collect () {
          this.set(maxStreams)
        }
      })
  )

  const requests = app.meters.counter('http_requests_total', 'HTTP requests, by route template', [
    'method',
    'route',
    'status_code'
  ])
  const durations = app.meters.histogram(
    'http_request_duration_seconds',
    'HTTP request duration in seconds, by route template',
    ['method', 'route', 'status_code'],
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
  )
  // The duration histogram covers registered routes (as fastify-metrics' registeredRoutesOnly did), not HEAD,
  // OPTIONS, TRACE or CONNECT, nor routes with config.disableMetrics (the metrics endpoint).
  const timed = new Set<string>()
  app.addHook('onRoute', (route) => {
    if ((route.config as { disableMetrics?: boolean } | undefined)?.disableMetrics === true) return
    for (const method of [route.method].flat()) {
      if (!UNTIMED_METHODS.has(method)) timed.add(`${method} ${route.url}`)
    }
  })
  const seriesOf = (method: string, route: string | undefined, url: string, statusCode: number): Series => {
    const time = timed.has(`${method} ${route ?? url}`)
    return {
      // Unknown URLs share one label value so they cannot grow the series count.
      counted: { method, route: route ?? NOT_FOUND_ROUTE, status_code: String(statusCode) },
      timed: time ? { method, route: route ?? url, status_code: statusCode } : null
    }
  }
  // Label sets of the requests seen, by method, route template and status: built once, then reused.
  const seen = new Map<string, Series>()
  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url
    const { method } = request
    const statusCode = reply.statusCode
    let series: Series | undefined
    if (route === undefined) {
      series = seriesOf(method, route, request.url, statusCode) // 404: keyed by nothing the client controls
    } else {
      const key = `${method} ${statusCode} ${route}`
      series = seen.get(key)
      if (!series) {
        series = seriesOf(method, route, request.url, statusCode)
        if (seen.size < MAX_SERIES) seen.set(key, series)
      }
    }
    requests.inc(series.counted)
    if (series.timed) durations.observe(series.timed, reply.elapsedTime / 1000)
    done()
  })
}, { name: 'metrics', dependencies: ['config'] })

/** Serves GET /metrics (the app's registry) on its own port, bound to `host`; resolves once listening. */
export async function startMetricsListener (app: FastifyInstance, port: number, host: string): Promise<Server> {
  const server = createServer((request, response) => {
    const path = (request.url ?? '').split('?')[0]
    if (request.method !== 'GET' || path !== '/metrics') {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found: GET /metrics\n')
      return
    }
    app.meters.registry.metrics().then(
      body => response.writeHead(200, { 'content-type': app.meters.registry.contentType }).end(body),
      (err: Error) => {
        app.log.error({ err }, 'metrics listener: exposition failed')
        response.writeHead(500, { 'content-type': 'text/plain' }).end('exposition failed\n')
      })
  })
  server.keepAliveTimeout = 65_000
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => { server.off('error', reject); resolve() })
  })
  return server
}

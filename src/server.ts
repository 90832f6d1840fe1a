// Entry point: parse the configuration, build the app, listen, print the banner, and shut down
// gracefully (readiness fails first, streams are told, invocations still running near the end of the
// grace period are aborted with 503 and their usage recorded, Redis and the database are closed, exit 0).
import Fastify from 'fastify'
import closeWithGrace from 'close-with-grace'
import type { Server } from 'node:http'
import { ConfigError, loadConfig, type Config } from './config.js'
import app, { serverOptions, VERSION } from './app.js'
import { messageOf } from './errors.js'
import { startMetricsListener } from './plugins/metrics.js'

const LABELS: Record<string, string> = { llmProvider: 'llm', rateLimits: 'limits' }
const FIRST = ['database', 'redis', 'llmProvider']

function banner (config: Config, address: string, features: Record<string, string>, notices: string[]): string {
  const names = [...FIRST, ...Object.keys(features).filter(name => !FIRST.includes(name))]
  const rows: Array<[string, string]> = [
    ...names.map((name): [string, string] => [LABELS[name] ?? name, features[name] || 'none']),
    ['docs', `${address}/docs   openapi: ${address}/openapi.json`]
  ]
  const width = Math.max(...rows.map(([label]) => label.length))
  return [
    `Amrikyy Agent API ${VERSION} listening on ${address} (${config.NODE_ENV})`,
    ...rows.map(([label, value]) => `  ${label.padEnd(width)} : ${value}`),
    ...notices
  ].join('\n') + '\n'
}

/** The address a person can open: wildcard hosts become localhost, IPv6 literals get brackets. */
function displayAddress (host: string, port: number): string {
  const name = host === '0.0.0.0' || host === '::' ? 'localhost' : host.includes(':') ? `[${host}]` : host
  return `http://${name}:${port}`
}

/** Time kept at the end of the grace period for aborted invocations to answer and the rest to close. */
function shutdownMargin (graceMs: number): number {
  return Math.min(5000, Math.max(500, Math.floor(graceMs / 4)))
}

async function main () {
  let config: Config
  try {
    config = loadConfig()
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`)
      process.exit(1)
    }
    throw error
  }

  const server = Fastify(serverOptions(config))
  await server.register(app, { config })

  const grace = config.SHUTDOWN_GRACE_MS
  let metricsListener: Server | null = null
  closeWithGrace({ delay: grace, logger: server.log }, async ({ signal, err }) => {
    if (err) server.log.error({ err }, 'fatal error, shutting down')
    else server.log.info({ signal }, 'shutting down')
    server.lifecycle.beginShutdown()
    // Invocations get the grace period less a margin to finish; then they are aborted, so their 503s,
    // usage rows and the rest of the close fit before close-with-grace would exit 1.
    const abort = setTimeout(() => {
      const aborted = server.agents.abortInFlight()
      if (aborted > 0) server.log.warn({ aborted }, 'aborted invocations still running at shutdown')
    }, grace - shutdownMargin(grace))
    abort.unref()
    // Keep-alive connections whose last request has been answered would hold close() until they time out.
    const idle = setInterval(() => server.server.closeIdleConnections(), 100)
    await server.close()
    // Scrapes go on until the app has closed; then the metrics port closes too.
    metricsListener?.closeAllConnections()
    metricsListener?.close()
    clearTimeout(abort)
    clearInterval(idle)
  })

  await server.listen({ port: config.PORT, host: config.HOST })
  const address = displayAddress(config.HOST, config.PORT)
  const notices = [...server.notices]
  if (config.METRICS_PORT !== undefined) {
    metricsListener = await startMetricsListener(server, config.METRICS_PORT, config.HOST)
    notices.push(
      `  metrics listener: ${displayAddress(config.HOST, config.METRICS_PORT)}/metrics (no auth, no rate limit)`
    )
  }
  process.stdout.write(banner(config, address, server.features, notices))
}

main().catch((error) => {
  process.stderr.write(`Startup failed: ${messageOf(error)}\n`)
  process.exit(1)
})

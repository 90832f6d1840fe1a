// Entry point: parse the configuration, build the app, listen, print the banner, and shut down
// gracefully (readiness fails first, streams are told, Redis and the database are closed).
import Fastify from 'fastify'
import closeWithGrace from 'close-with-grace'
import { ConfigError, loadConfig, type Config } from './config.js'
import app, { serverOptions, VERSION } from './app.js'

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

  closeWithGrace({ delay: config.SHUTDOWN_GRACE_MS, logger: server.log }, async ({ signal, err }) => {
    if (err) server.log.error({ err }, 'fatal error, shutting down')
    else server.log.info({ signal }, 'shutting down')
    server.lifecycle.beginShutdown()
    await server.close()
  })

  await server.listen({ port: config.PORT, host: config.HOST })
  const address = displayAddress(config.HOST, config.PORT)
  process.stdout.write(banner(config, address, server.features, server.notices))
}

main().catch((error) => {
  process.stderr.write(`Startup failed: ${(error as Error).message}\n`)
  process.exit(1)
})

// The configuration as a plugin: decorates app.config with the parsed environment (loadConfig in
// src/config.ts) and logs, at boot, a warning for each Express-service variable honoured or unused
// (src/config/legacy.ts). Registered first; every other plugin names it as a dependency.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { configWarnings, type Config } from '../config.js'

declare module 'fastify' {
  interface FastifyInstance {
    config: Config
  }
}

export interface ConfigPluginOptions {
  config: Config
}

async function configPlugin (app: FastifyInstance, opts: ConfigPluginOptions) {
  app.decorate('config', opts.config)
  for (const warning of configWarnings(opts.config)) app.log.warn({ deprecated: true }, warning)
}

export default fp(configPlugin, { name: 'config' })

// Rate-limit settings derived from the configuration. The variables are parsed and checked in
// src/config/limits.ts (loadConfig reports their problems); this turns them into the policy's settings.
import { csv, type Config } from '../config.js'
import { parseOverrides } from '../config/limits.js'
import type { LimitSettings } from './policy.js'

export function limitSettings (config: Config): LimitSettings {
  return {
    globalMax: config.RATE_LIMIT_GLOBAL_MAX,
    adminMax: config.RATE_LIMIT_ADMIN_MAX,
    windowMs: config.RATE_LIMIT_WINDOW_MS,
    premiumMultiplier: config.RATE_LIMIT_PREMIUM_MULTIPLIER,
    exemptRoles: new Set(csv(config.RATE_LIMIT_EXEMPT_ROLES)),
    overrides: parseOverrides(config.RATE_LIMIT_OVERRIDES)
  }
}

export function allowListEntries (config: Config): string[] {
  return csv(config.RATE_LIMIT_WHITELIST)
}

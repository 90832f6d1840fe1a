// Rules every route that names an agent or invokes one applies the same way: the 404 for an unknown
// agent, and when a request bypasses the response cache. Framework-free: plain names and headers in.
import { NotFoundError, withDetails } from '../errors.js'

/** The 404 for an agent name that does not exist, listing the ones that do (`details.availableAgents`). */
export function unknownAgent (name: string, available: readonly string[]) {
  return withDetails(new NotFoundError(`Unknown agent '${name}'`), { availableAgents: [...available] })
}

/**
 * True when the request's Cache-Control says `no-cache` or `no-store`: the agents' response cache is then
 * neither read nor trusted (the answer is generated afresh and stored for later requests). The invoke routes
 * and every coordinator step follow this one rule.
 */
export function cacheBypass (headers: { 'cache-control'?: string | string[] }): boolean {
  const value = headers['cache-control']
  const text = Array.isArray(value) ? value.join(',') : value ?? ''
  return /\bno-(cache|store)\b/i.test(text)
}

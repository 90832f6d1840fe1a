// Shared pieces of the management tests: API keys for a user and an admin, priced offline calls, a
// provider that can be made to fail (the real offline provider, injected through the llm plugin's
// provider option), and request shorthands.
import type { FastifyInstance } from 'fastify'
import { createOfflineProvider } from '../../src/llm/offline.js'
import { offlineBuilder } from '../../src/agents/index.js'
import { LlmUnavailableError } from '../../src/errors.js'
import type { LlmProvider, StreamChunk } from '../../src/llm/types.js'

export const USER_KEY = 'amk_test_user_key_000000000000000000'
export const ADMIN_KEY = 'amk_test_admin_key_00000000000000000'

export const MANAGEMENT_ENV: Record<string, string> = {
  VALID_API_KEYS: `${USER_KEY}:user,${ADMIN_KEY}:admin`,
  // Offline calls are free by default; price them so costs can be checked.
  LLM_PRICING: JSON.stringify({ offline: { input: 2, output: 8 } })
}

export interface Switchable { provider: LlmProvider, state: { failing: boolean, checkOk: boolean, calls: number } }

export function switchableProvider (): Switchable {
  const offline = createOfflineProvider({ build: offlineBuilder() })
  const state = { failing: false, checkOk: true, calls: 0 }
  const fail = () => new LlmUnavailableError('injected provider failure')
  const provider: LlmProvider = {
    name: 'offline',
    async generate (request) {
      state.calls++
      if (state.failing) throw fail()
      return offline.generate(request)
    },
    stream (request): AsyncIterable<StreamChunk> {
      state.calls++
      if (state.failing) return (async function * () { throw fail() })()
      return offline.stream(request)
    },
    async check () {
      return state.checkOk ? offline.check() : { ok: false, message: 'injected: provider unreachable' }
    }
  }
  return { provider, state }
}

export function flight (to: string, extra: Record<string, unknown> = {}) {
  return { from: 'Cairo', to, date: '2027-06-01', passengers: 2, class: 'economy', ...extra }
}

export function visa (destination: string) {
  return { destination, nationality: 'Egyptian', purpose: 'tourism', duration: 10 }
}

export function blog (topic: string) {
  return { topic, type: 'how-to', tone: 'casual', length: 800, keywords: ['budget'], targetAudience: 'students' }
}

export function invoke (app: FastifyInstance, agent: string, method: string, payload: unknown, key = USER_KEY) {
  return app.inject({
    method: 'POST',
    url: `/api/agents/${agent}/${method}`,
    headers: { 'x-api-key': key },
    payload: payload as object
  })
}

export function get (app: FastifyInstance, url: string, key = ADMIN_KEY) {
  return app.inject({ method: 'GET', url, headers: { 'x-api-key': key } })
}

export function post (app: FastifyInstance, url: string, payload?: object, key = ADMIN_KEY) {
  return app.inject({ method: 'POST', url, headers: { 'x-api-key': key }, ...(payload ? { payload } : {}) })
}

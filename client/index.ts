// The generated TypeScript client: openapi-fetch over the types openapi-typescript generated from
// /openapi.json (client/schema.d.ts, `npm run client`). Every path, body, parameter and response —
// including the one error shape — is typed. Credentials go in headers, never in the URL.
import createClient, { type Client } from 'openapi-fetch'
import type { components, operations, paths } from './schema.js'

export type { components, operations, paths }
export type ErrorResponse = components['schemas']['ErrorResponse']
/** JSON responses only: the `text/event-stream` variants are read with EventSource (see the README). */
export type AmrikyyClient = Client<paths, 'application/json'>

export interface ClientOptions {
  /** The API's origin, e.g. http://localhost:3001 */
  baseUrl: string
  /** Sent as x-api-key. */
  apiKey?: string
  /** A JWT (from POST /api/auth/login) or a Supabase access token, sent as a bearer token. */
  token?: string
  fetch?: typeof globalThis.fetch
}

export function createAmrikyyClient ({ baseUrl, apiKey, token, fetch }: ClientOptions): AmrikyyClient {
  const client = createClient<paths, 'application/json'>({ baseUrl, ...(fetch ? { fetch } : {}) })
  client.use({
    onRequest ({ request }) {
      if (apiKey) request.headers.set('x-api-key', apiKey)
      if (token) request.headers.set('authorization', `Bearer ${token}`)
      return request
    }
  })
  return client
}

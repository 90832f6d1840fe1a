// The generated TypeScript client: openapi-fetch over the types openapi-typescript generated from
// /openapi.json (client/schema.d.ts, `npm run client`). Every path, body, parameter and response —
// including the one error shape — is typed — plus `stream()` for the SSE routes (client/stream.ts).
// Credentials go in headers, never in the URL.
import createClient, { type Client } from 'openapi-fetch'
import type { components, operations, paths } from './schema.js'
import { openStream, type StreamInput, type StreamOptions, type StreamRoute, type StreamEvent } from './stream.js'

export type { components, operations, paths }
export type { StreamEvent, StreamEventName, StreamInput, StreamOptions, StreamRoute } from './stream.js'
export { StreamHttpError, readFrames } from './stream.js'
export type ErrorResponse = components['schemas']['ErrorResponse']
/** Typed JSON calls (GET, POST, …) and typed streams. */
export type AmrikyyClient = Client<paths, 'application/json'> & {
  /** Streams a generation: `{ id, event, data }` narrowed by `event`; resumes after a drop; abort to cancel. */
  stream: <R extends StreamRoute>(
    route: R,
    input: StreamInput<R>,
    options?: StreamOptions
  ) => AsyncGenerator<StreamEvent>
}

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
  const headers = (): Record<string, string> => ({
    ...(apiKey ? { 'x-api-key': apiKey } : {}),
    ...(token ? { authorization: `Bearer ${token}` } : {})
  })
  client.use({
    onRequest ({ request }) {
      for (const [name, value] of Object.entries(headers())) request.headers.set(name, value)
      return request
    }
  })
  const transport = {
    baseUrl: baseUrl.replace(/\/+$/, ''),
    headers,
    fetch: fetch ?? ((input, init) => globalThis.fetch(input, init))
  }
  return Object.assign(client, {
    stream: <R extends StreamRoute>(route: R, input: StreamInput<R>, options?: StreamOptions) =>
      openStream(transport, route, input, options)
  })
}

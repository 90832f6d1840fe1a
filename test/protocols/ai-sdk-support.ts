// Shared by the AI SDK UI message stream tests (Node and Chromium): the native stream of a route as the
// reference (its token text and result), and what a final UIMessage holds (text, data parts by type).
import type { FastifyInstance } from 'fastify'
import type { UIMessage } from 'ai'
import { parseSse } from '../streams/sse-client.js'
import { premium, ROUTES, type RouteName } from '../streams/support.js'

export const UI_FORMAT = 'format=ui-message-stream'

export interface NativeReference {
  streamId: string
  /** The token chunks, concatenated. */
  text: string
  /** The `result` event's data.data. */
  result: unknown
  usage: unknown
  items: unknown[]
}

/** The same input on the native route: the reference a UI message stream must equal. */
export async function nativeStream (app: FastifyInstance, route: RouteName): Promise<NativeReference> {
  const res = await app.inject({ method: 'POST', url: `/api/stream/${route}`, headers: premium, payload: ROUTES[route].input })
  const { frames } = parseSse(res.body)
  const dataOf = (event: string) => frames.find(f => f.event === event)?.data
  return {
    streamId: dataOf('connected')?.streamId,
    text: frames.filter(f => f.event === 'token').map(f => f.data.chunk).join(''),
    result: dataOf('result')?.data,
    usage: dataOf('usage'),
    items: frames.filter(f => f.event === 'partial' || f.event === 'post').map(f => f.event === 'partial' ? f.data.data : f.data)
  }
}

export interface MessageSummary {
  id: string
  text: string
  /** Data parts' data, by type (`data-result` → [result]). */
  data: Record<string, unknown[]>
  metadata: unknown
}

/** What a UIMessage holds, in a comparable form. */
export function summarize (message: UIMessage | undefined): MessageSummary {
  const data: Record<string, unknown[]> = {}
  let text = ''
  for (const part of message?.parts ?? []) {
    if (part.type === 'text') text += part.text
    else if (part.type.startsWith('data-') && 'data' in part) (data[part.type] ??= []).push(part.data)
  }
  return { id: message?.id ?? '', text, data, metadata: message?.metadata }
}

// A small SSE client for the stream tests, on node:http so a test can stop reading (slow reader),
// drop the connection after k events (disconnect), and see every frame, comment and retry hint.
import http from 'node:http'
import { once } from 'node:events'
import { fromWireName } from '../../src/streams/events.js'

export interface Frame { id?: string, event: string, data: any }

/**
 * Parses text/event-stream text into frames, comments and the retry hint (the spec's field rules).
 * Event names come back in the server's vocabulary (wire `failure` → `error`, as logged).
 */
export function parseSse (text: string): { frames: Frame[], comments: string[], retry?: number, rest: string } {
  const frames: Frame[] = []
  const comments: string[] = []
  let retry: number | undefined
  const blocks = text.split(/\r?\n\r?\n/)
  const rest = blocks.pop() ?? ''
  for (const block of blocks) {
    const frame: { id?: string, event?: string, data: string[] } = { data: [] }
    for (const line of block.split(/\r?\n/)) {
      if (line.startsWith(':')) { comments.push(line.slice(1).trim()); continue }
      const colon = line.indexOf(':')
      const field = colon < 0 ? line : line.slice(0, colon)
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '')
      if (field === 'id') frame.id = value
      else if (field === 'event') frame.event = value
      else if (field === 'data') frame.data.push(value)
      else if (field === 'retry') retry = Number(value)
    }
    if (frame.data.length > 0) {
      frames.push({
        id: frame.id,
        event: fromWireName(frame.event ?? 'message'),
        data: JSON.parse(frame.data.join('\n'))
      })
    }
  }
  return { frames, comments, retry, rest }
}

export class SseStream {
  readonly frames: Frame[] = []
  readonly comments: string[] = []
  retry?: number
  ended = false
  /** Everything received, as text. */
  raw = ''
  private buffer = ''
  private waiters: Array<() => void> = []
  readonly done: Promise<void>

  constructor (readonly req: http.ClientRequest, readonly res: http.IncomingMessage) {
    res.setEncoding('utf8')
    res.on('data', (chunk: string) => {
      this.raw += chunk
      const parsed = parseSse(this.buffer + chunk)
      this.buffer = parsed.rest
      this.frames.push(...parsed.frames)
      this.comments.push(...parsed.comments)
      if (parsed.retry !== undefined) this.retry = parsed.retry
      this.wake()
    })
    this.done = new Promise(resolve => {
      const finish = () => { this.ended = true; this.wake(); resolve() }
      res.once('end', finish)
      res.once('close', finish)
      res.once('error', finish)
    })
  }

  get status (): number { return this.res.statusCode ?? 0 }
  get headers (): http.IncomingHttpHeaders { return this.res.headers }
  get events (): string[] { return this.frames.map(f => f.event) }

  private wake () {
    const waiters = this.waiters
    this.waiters = []
    for (const wake of waiters) wake()
  }

  /** Resolves once `predicate` holds for the frames received so far (or rejects when the stream ends first). */
  async until (predicate: (frames: Frame[]) => boolean, what = 'condition'): Promise<void> {
    while (!predicate(this.frames)) {
      if (this.ended) throw new Error(`stream ended before ${what}; got ${this.events.join(',')}`)
      await new Promise<void>(resolve => this.waiters.push(resolve))
    }
  }

  /** Waits for the server to end the response; returns every frame. */
  async finished (): Promise<Frame[]> {
    await this.done
    return this.frames
  }

  /** Stops reading: the kernel and server buffers fill and the server sees backpressure. */
  pause (): void { this.res.pause() }
  resume (): void { this.res.resume() }

  /** Drops the connection (a client going away). */
  destroy (): void {
    this.req.destroy()
    this.res.destroy()
  }
}

/** Opens a stream; resolves with the response (status and headers) once they arrive. */
export async function openSse (
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: unknown } = {}
): Promise<SseStream> {
  const body = options.body === undefined ? undefined : JSON.stringify(options.body)
  const req = http.request(url, {
    method: options.method ?? (body ? 'POST' : 'GET'),
    agent: false,
    headers: {
      accept: 'text/event-stream',
      ...(body ? { 'content-type': 'application/json' } : {}),
      ...options.headers
    }
  })
  req.end(body)
  const [res] = (await once(req, 'response')) as [http.IncomingMessage]
  return new SseStream(req, res)
}

/** The JSON body of a non-stream answer (errors before the stream opened). */
export async function jsonOf (stream: SseStream): Promise<any> {
  await stream.done
  return JSON.parse(stream.raw)
}

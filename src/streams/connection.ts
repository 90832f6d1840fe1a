// One SSE response: writes frames with backpressure (a write that returns false waits for 'drain', so a
// client that does not read holds at most one socket buffer of ours), heartbeats only when idle, and
// notices the client going away. Works on a raw node:http ServerResponse; no Fastify here.
import type { IncomingMessage, ServerResponse } from 'node:http'
import {
  encodeComment,
  encodeRetry,
  nativeWire,
  StreamErrorCode,
  type StreamEvent,
  type StreamWire
} from './events.js'

/**
 * node:http keeps the header block it sent (`_header`: about 1 KB with the security headers, as a concatenation
 * tree 2.4 KB) for the response's life, although once it is on the wire (`_headerSent`) node reads it only
 * as a flag: `headersSent`, and the ERR_HTTP_HEADERS_SENT guards of setHeader, writeHead and the like. A
 * one-character stand-in keeps the flag without the kilobyte per open stream. Internal fields, so both are
 * checked: where node has neither, this does nothing.
 */
function dropSentHeaderBlock (res: ServerResponse): void {
  const sent = res as unknown as { _header?: unknown, _headerSent?: unknown }
  if (typeof sent._header === 'string' && sent._header !== '' && sent._headerSent === true) sent._header = '\n'
}

/**
 * node:http keeps a request's raw header lines (`rawHeaders`: an array and a string per name) for the request's
 * life, although `headers`, once read, is its own object that nothing rebuilds. An open stream has read its
 * headers long before (authentication, Last-Event-ID, the format): it keeps that object and lets the raw lines
 * go (about 0.3 KB per open stream, more for a browser with cookies). `headersDistinct` would read them, and
 * nothing here does.
 */
const NO_RAW_HEADERS: string[] = []

function dropRawHeaders (req: IncomingMessage | undefined): void {
  if (!req || req.rawHeaders.length === 0) return
  if (req.headers) req.rawHeaders = NO_RAW_HEADERS // `headers` is built by this read if it was not yet
}

export type EndReason = 'finished' | 'client-closed' | 'shutdown' | 'error'

export class SseConnection {
  /** Id of the last event written (Last-Event-ID a reconnect will send). */
  lastEventId: string
  endReason: EndReason | null = null
  private waitingDrain = false
  private ended = false
  /**
   * Called once when the connection ends. Plain callbacks, and an AbortController only for a caller that
   * asks for `signal`: a controller with its signal's listener maps is most of a kilobyte per open stream.
   * An exact-size array (concat), replaced on change: one grown by push or spread holds room for 16.
   */
  private endListeners: ReadonlyArray<() => void> = []
  private controller: AbortController | null = null

  constructor (
    readonly res: ServerResponse,
    readonly streamId: string,
    startSeq: number,
    /** How events are framed on this connection (native §8 events unless a protocol route chose another). */
    readonly wire: StreamWire = nativeWire
  ) {
    this.lastEventId = `${streamId}-${startSeq}`
    res.once('close', () => this.finish('client-closed'))
  }

  /**
   * Aborts when the client goes away or the server ends this connection; its reason is the EndReason (a
   * plain string: abort() without a reason builds a DOMException with a stack, per connection).
   */
  get signal (): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController()
      if (this.ended) this.controller.abort(this.endReason)
    }
    return this.controller.signal
  }

  /** Calls `listener` once when the connection ends (at once if it has); offEnd removes it. */
  onEnd (listener: () => void): void {
    if (this.ended) listener()
    else this.endListeners = this.endListeners.concat(listener)
  }

  offEnd (listener: () => void): void {
    this.endListeners = this.endListeners.filter(l => l !== listener)
  }

  private finish (reason: EndReason): void {
    this.endReason ??= reason
    if (this.ended) return
    this.ended = true
    this.controller?.abort(this.endReason)
    const listeners = this.endListeners
    this.endListeners = []
    for (const listener of listeners) listener()
  }

  /** Sends the status line and headers, and the reconnection hint. */
  open (headers: Record<string, string | string[] | number>, retryMs: number): void {
    this.res.writeHead(200, { ...headers, ...this.wire.headers })
    this.res.write(encodeRetry(retryMs))
    // Headers go out now, not with the first event, so EventSource opens at once.
    this.res.flushHeaders()
    dropSentHeaderBlock(this.res)
    dropRawHeaders(this.res.req)
  }

  get isOpen (): boolean {
    return !this.ended && !this.res.writableEnded
  }

  /** Bytes queued in our socket buffer, waiting for the client (backpressure metric, tests). */
  get buffered (): number {
    return this.res.writableLength + (this.res.socket?.writableLength ?? 0)
  }

  /** Writes frames now; false when the client is behind (await drained() before writing more) or gone. */
  send (frames: string, id?: string): boolean {
    if (!this.isOpen) return false
    if (id) this.lastEventId = id
    if (this.res.write(frames)) return true
    this.waitingDrain = true
    return false
  }

  /** After send() returned false: resolves when the client caught up (true) or went away (false). */
  async drained (): Promise<boolean> {
    if (this.waitingDrain && this.isOpen) {
      await new Promise<void>(resolve => {
        const done = () => { this.res.off('drain', done); this.offEnd(done); resolve() }
        this.res.once('drain', done)
        this.onEnd(done)
      })
    }
    this.waitingDrain = false
    return this.isOpen
  }

  /** Writes one frame; resolves when it may write again (after 'drain'), false when the client is gone. */
  async write (frame: string, id?: string): Promise<boolean> {
    return this.send(frame, id) || this.drained()
  }

  /** A comment line, skipped while the client is behind (the pending data keeps the proxy busy anyway). */
  heartbeat (): void {
    if (this.isOpen && !this.waitingDrain) this.res.write(encodeComment('heartbeat'))
  }

  /** Ends the response after what was written. */
  end (reason: EndReason = 'finished'): void {
    if (this.res.writableEnded) return
    this.endReason ??= reason
    this.res.end()
    this.finish(reason)
  }

  /**
   * Server going down: tells the client to reconnect (elsewhere) from its last event, then ends. The
   * frame repeats the last delivered id, so the browser's Last-Event-ID is unchanged; it is not logged.
   * A client that reads nothing is cut off after `flushMs` so shutdown never waits on it.
   */
  async shutdown (flushMs: number): Promise<void> {
    if (this.res.writableEnded || this.res.destroyed) return
    this.endReason = 'shutdown'
    const event: StreamEvent = {
      event: 'error',
      data: {
        code: StreamErrorCode.SHUTTING_DOWN,
        message: 'The server is shutting down; reconnect with Last-Event-ID to resume',
        recoverable: true,
        lastEventId: this.lastEventId
      }
    }
    const closed = new Promise(resolve => this.res.once('close', resolve))
    this.res.write(this.wire.notice(this.lastEventId, event))
    this.res.end()
    this.finish('shutdown')
    const timer = setTimeout(() => this.res.destroy(), flushMs)
    await closed
    clearTimeout(timer)
  }
}

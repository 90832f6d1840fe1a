// Running MCP tool calls, so a cancellation can find them. In stateless Streamable HTTP every POST gets
// its own server, so `notifications/cancelled` arrives at a different server than the call it names:
// calls are registered here by (caller id, JSON-RPC request id) and a cancellation from the same caller
// aborts the matching calls' AbortController (the invoke signal, so the provider request is aborted).
// Request ids are only unique per client connection: two clients of one caller may both run an id 7,
// and a cancellation of 7 then aborts both (documented in docs/protocols.md).
import type { RequestId } from '@modelcontextprotocol/sdk/types.js'

export interface RunningCall {
  signal: AbortSignal
  /** Unregisters the call (it finished). */
  end(): void
}

export interface CallRegistry {
  start(callerId: string, requestId: RequestId): RunningCall
  /** Aborts the caller's running calls with that request id; how many there were. */
  cancel(callerId: string, requestId: RequestId, reason?: string): number
  readonly size: number
}

export function createCallRegistry (): CallRegistry {
  const running = new Map<string, Set<AbortController>>()
  const keyOf = (callerId: string, requestId: RequestId) => `${callerId}\n${typeof requestId}:${requestId}`
  let size = 0
  return {
    start (callerId, requestId) {
      const key = keyOf(callerId, requestId)
      const controller = new AbortController()
      let calls = running.get(key)
      if (!calls) running.set(key, calls = new Set())
      calls.add(controller)
      size++
      return {
        signal: controller.signal,
        end () {
          if (!calls.delete(controller)) return
          size--
          if (calls.size === 0 && running.get(key) === calls) running.delete(key)
        }
      }
    },
    cancel (callerId, requestId, reason) {
      const calls = running.get(keyOf(callerId, requestId))
      for (const controller of calls ?? []) {
        controller.abort(new Error(`MCP request ${requestId} cancelled by the client${reason ? `: ${reason}` : ''}`))
      }
      return calls?.size ?? 0
    },
    get size () { return size }
  }
}

/** Calls `send` at most once per `intervalMs` (the first call always goes out); the calls between are dropped. */
export function throttle<A extends unknown[]> (send: (...args: A) => void, intervalMs: number): (...args: A) => void {
  let last = -Infinity
  return (...args) => {
    const now = performance.now()
    if (now - last < intervalMs) return
    last = now
    send(...args)
  }
}

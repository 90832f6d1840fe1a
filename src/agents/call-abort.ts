// An invocation's abort handle whose AbortSignal is made only when something reads it. On Node 20 a signal
// costs a few microseconds and about 0.7 KB (an EventTarget with two listener maps and a shape of its own),
// and most invocations never need one: a cache hit or refused input makes no provider call, and only a
// provider call (or a composite method) reads the signal.

export class LazyAbortController {
  #controller: AbortController | null = null
  #aborted = false
  #reason: unknown = undefined

  get aborted (): boolean {
    return this.#aborted
  }

  /** What abort() was given (undefined when nothing was). */
  get reason (): unknown {
    return this.#reason
  }

  get signal (): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController()
      if (this.#aborted) this.#controller.abort(this.#reason)
    }
    return this.#controller.signal
  }

  abort (reason?: unknown): void {
    if (this.#aborted) return
    this.#aborted = true
    this.#reason = reason
    this.#controller?.abort(reason)
  }
}

/** What aborts one invocation: a caller's own AbortController (a stream's session), or a lazy one. */
export type CallController = AbortController | LazyAbortController

export const abortedOf = (controller: CallController): boolean =>
  controller instanceof LazyAbortController ? controller.aborted : controller.signal.aborted

export const reasonOf = (controller: CallController): unknown =>
  controller instanceof LazyAbortController ? controller.reason : controller.signal.reason

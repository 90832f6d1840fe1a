// An invocation's abort handle that is its own signal. On Node 20 an AbortSignal costs a few microseconds and
// about 0.7 KB (an EventTarget with two listener maps and their tables), which an open stream holds for its
// whole life. What a provider call needs of a signal is its reading and listening half (CallSignal): undici
// takes any object with addEventListener, and so does this service's own code. A real AbortSignal is made only
// for an API that requires one (fetch: a composite method's tools), by abortSignal().

import type { CallSignal } from '../llm/types.js'

export type { CallSignal }

const NO_LISTENERS: ReadonlyArray<() => void> = []

export class LazyAbortController implements CallSignal {
  #aborted = false
  #reason: unknown = undefined
  /** An exact-size array (concat), replaced on change: a call has one listener or none. */
  #listeners = NO_LISTENERS
  #real: AbortController | null = null

  get aborted (): boolean {
    return this.#aborted
  }

  /** What abort() was given (undefined when nothing was). */
  get reason (): unknown {
    return this.#reason
  }

  /** The signal half: this object itself. */
  get signal (): CallSignal {
    return this
  }

  /** Listeners run once, on the first abort (each at most once, like `{ once: true }`); none after it. */
  addEventListener (_type: 'abort', listener: () => void): void {
    if (!this.#aborted && !this.#listeners.includes(listener)) this.#listeners = this.#listeners.concat(listener)
  }

  removeEventListener (_type: 'abort', listener: () => void): void {
    if (this.#listeners.includes(listener)) this.#listeners = this.#listeners.filter(l => l !== listener)
  }

  /** A real AbortSignal following this one (made once, on the first call), for an API that requires one. */
  abortSignal (): AbortSignal {
    if (!this.#real) {
      this.#real = new AbortController()
      if (this.#aborted) this.#real.abort(this.#reason)
    }
    return this.#real.signal
  }

  abort (reason?: unknown): void {
    if (this.#aborted) return
    this.#aborted = true
    this.#reason = reason
    this.#real?.abort(reason)
    const listeners = this.#listeners
    this.#listeners = NO_LISTENERS
    for (const listener of listeners) listener()
  }
}

/** A real AbortSignal for a call's signal: the signal itself when it is one. */
export function abortSignalOf (signal: CallSignal): AbortSignal {
  if (signal instanceof AbortSignal) return signal
  if (signal instanceof LazyAbortController) return signal.abortSignal()
  const controller = new AbortController()
  if (signal.aborted) controller.abort(signal.reason)
  else signal.addEventListener('abort', () => controller.abort(signal.reason), { once: true })
  return controller.signal
}

/** What aborts one invocation: a caller's own AbortController, or a lazy one (a stream's session). */
export type CallController = AbortController | LazyAbortController

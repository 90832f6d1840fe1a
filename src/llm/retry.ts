// Retry policy for LLM HTTP calls: exponential backoff with full jitter, honouring (and capping) a
// server's Retry-After. Sleeps are abortable so a cancelled caller never waits out a backoff.
import { CancelledError } from '../errors.js'
import type { CallSignal } from './types.js'

export interface RetryPolicy {
  /** Retries after the first attempt. */
  maxRetries: number
  baseMs: number
  /** Cap on any wait, including a Retry-After the server asked for. */
  maxDelayMs: number
}

/** Retry-After as milliseconds (delta-seconds or an HTTP date), or undefined. */
export function parseRetryAfter (value: string | null | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined
  const trimmed = value.trim()
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000)
  const date = Date.parse(trimmed)
  return Number.isNaN(date) ? undefined : Math.max(0, date - now)
}

/** The wait before retry number `retry` (0-based): Retry-After when given (capped), else full jitter. */
export function backoffDelay (retry: number, policy: RetryPolicy, retryAfterMs?: number, random = Math.random): number {
  if (retryAfterMs !== undefined) return Math.min(retryAfterMs, policy.maxDelayMs)
  const ceiling = Math.min(policy.maxDelayMs, policy.baseMs * 2 ** retry)
  return Math.round(random() * ceiling)
}

export function sleep (ms: number, signal?: CallSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new CancelledError('The request was cancelled'))
    const timer = setTimeout(done, ms)
    function done () {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }
    function onAbort () {
      clearTimeout(timer)
      reject(new CancelledError('The request was cancelled'))
    }
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

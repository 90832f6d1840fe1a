// Cross-replica cancel: POST …/cancel may land on any replica, the generation runs on one. With Redis,
// a cancel is published on one channel and every instance aborts the stream if it runs it; without
// Redis there is one instance and the bus is local. Publishing goes through the Redis circuit breaker
// (while it is open a remote cancel is refused at once with 503); the subscriber's reconnection errors
// are logged through the breaker, one line per period.
import type { Redis } from 'ioredis'
import { ServiceUnavailableError, withDetails } from '../errors.js'
import { breakerFor } from '../limits/redis-failover.js'

const COMPONENT = 'cancel bus'

export interface CancelBus {
  publish(streamId: string): Promise<void>
  close(): Promise<void>
}

export async function createCancelBus (options: {
  redis: Redis | null
  channel: string
  onCancel: (streamId: string) => void
  onError?: (error: Error) => void
  /** How long boot waits for the subscription. */
  waitMs?: number
}): Promise<CancelBus> {
  const { redis, channel, onCancel } = options
  if (!redis) {
    return { async publish (streamId) { onCancel(streamId) }, async close () {} }
  }
  // A subscriber connection can run nothing else; it reconnects (and resubscribes) on its own.
  const breaker = breakerFor(redis)
  const subscriber = redis.duplicate({ commandTimeout: undefined, lazyConnect: true, enableOfflineQueue: true })
  subscriber.on('error', (error: Error) => breaker.warn(COMPONENT, error))
  subscriber.on('message', (_channel: string, streamId: string) => onCancel(streamId))
  // Boot never waits on a down Redis: the subscription is queued and made when Redis is reachable.
  subscriber.connect().catch((error: Error) => options.onError?.(error))
  const subscribed = subscriber.subscribe(channel).catch((error: Error) => options.onError?.(error))
  await Promise.race([subscribed, new Promise(resolve => setTimeout(resolve, options.waitMs ?? 1000).unref())])
  return {
    async publish (streamId) {
      // Local first: most cancels reach the replica that runs the stream.
      onCancel(streamId)
      const unavailable = () =>
        withDetails(
          new ServiceUnavailableError(
            'Streams on other replicas cannot be cancelled right now (Redis unavailable); retry shortly'
          ),
          undefined,
          { 'retry-after': '2' }
        )
      if (!breaker.usable()) throw unavailable()
      const started = performance.now()
      await redis.publish(channel, streamId).catch((error: unknown) => {
        if (breaker.failure(COMPONENT, error, started)) throw unavailable()
        throw error
      })
    },
    async close () {
      subscriber.disconnect()
    }
  }
}

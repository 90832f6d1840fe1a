// Cross-replica cancel: POST …/cancel may land on any replica, the generation runs on one. With Redis,
// a cancel is published on one channel and every instance aborts the stream if it runs it; without
// Redis there is one instance and the bus is local.
import type { Redis } from 'ioredis'

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
  const subscriber = redis.duplicate({ commandTimeout: undefined, lazyConnect: true, enableOfflineQueue: true })
  subscriber.on('error', (error: Error) => options.onError?.(error))
  subscriber.on('message', (_channel: string, streamId: string) => onCancel(streamId))
  // Boot never waits on a down Redis: the subscription is queued and made when Redis is reachable.
  subscriber.connect().catch((error: Error) => options.onError?.(error))
  const subscribed = subscriber.subscribe(channel).catch((error: Error) => options.onError?.(error))
  await Promise.race([subscribed, new Promise(resolve => setTimeout(resolve, options.waitMs ?? 1000).unref())])
  return {
    async publish (streamId) {
      // Local first: most cancels reach the replica that runs the stream.
      onCancel(streamId)
      await redis.publish(channel, streamId)
    },
    async close () {
      subscriber.disconnect()
    }
  }
}

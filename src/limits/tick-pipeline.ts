// Redis commands of the request path sent together (issue 16). Each command written on its own costs a socket
// write (a system call) and ioredis's per-command bookkeeping; under load that was the largest share of a cheap
// request's CPU. The rate-limit script and the response-cache read go through here instead: the commands issued
// during one turn of the event loop leave in one write (a pipeline) once the turn ends (setImmediate), and each
// caller gets its own reply or error, as if it had sent its command alone. Only commands whose caller awaits the
// reply use it, so nothing becomes visible later than the caller already waited for. ioredis's global
// auto-pipelining is not used: it would also defer fire-and-forget writes, which other replicas (and tests) expect
// to see as soon as the response that caused them.
import type { Redis } from 'ioredis'

type Arg = string | number
interface Queued { command: string, args: Arg[], resolve(value: unknown): void, reject(error: unknown): void }

export class TickPipeline {
  private queue: Queued[] = []
  private scheduled = false

  constructor (private readonly redis: Redis) {}

  /** Sends `command` with the others of this turn of the event loop; resolves with its own reply. */
  call (command: string, args: Arg[]): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.queue.push({ command, args, resolve, reject })
      if (!this.scheduled) {
        this.scheduled = true
        setImmediate(this.flush)
      }
    })
  }

  private readonly flush = (): void => {
    const batch = this.queue
    this.queue = []
    this.scheduled = false
    if (batch.length === 1) {
      const [only] = batch
      this.redis.call(only.command, ...only.args).then(only.resolve, only.reject)
      return
    }
    const pipeline = this.redis.pipeline()
    for (const { command, args } of batch) pipeline.call(command, ...args)
    pipeline.exec().then(
      results => {
        for (let i = 0; i < batch.length; i++) {
          const [error, value] = results?.[i] ?? [new Error('no reply in the pipeline'), null]
          if (error) batch[i].reject(error)
          else batch[i].resolve(value)
        }
      },
      (error: unknown) => { for (const queued of batch) queued.reject(error) }
    )
  }
}

const pipelines = new WeakMap<Redis, TickPipeline>()

/** The one TickPipeline of a client, so the limiter's and the cache's commands share a write. */
export function tickPipelineFor (redis: Redis): TickPipeline {
  let pipeline = pipelines.get(redis)
  if (!pipeline) {
    pipeline = new TickPipeline(redis)
    pipelines.set(redis, pipeline)
  }
  return pipeline
}

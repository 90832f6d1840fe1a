// Redis commands of the request path sent together (issue 16). Each command written on its own costs a socket
// write (a system call) and ioredis's per-command bookkeeping; under load that was the largest share of a cheap
// request's CPU. The rate-limit script and the response-cache read go through here instead: the commands issued
// during one turn of the event loop leave in one write (the socket corked) once the turn ends (setImmediate), and
// each caller gets its own reply or error, as if it had sent its command alone. Only commands whose caller awaits the
// reply use it, so nothing becomes visible later than the caller already waited for. ioredis's global
// auto-pipelining is not used: it would also defer fire-and-forget writes, which other replicas (and tests) expect
// to see as soon as the response that caused them.
import { Command, type Redis } from 'ioredis'

type Arg = string | number

export class TickPipeline {
  private queue: Command[] = []
  private builders: Array<() => void> = []
  private scheduled = false

  constructor (private readonly redis: Redis) {}

  /** Sends `command` with the others of this turn of the event loop; resolves with its own reply. */
  call (command: string, args: Arg[]): Promise<unknown> {
    // The command `redis.call` would build (its reply as a string), sent later: its own promise is the answer.
    const queued = new Command(command, args, { keyPrefix: this.redis.options.keyPrefix, replyEncoding: 'utf8' })
    this.queue.push(queued)
    this.schedule()
    return queued.promise
  }

  /**
   * Runs `build` when this turn's commands are about to leave; the commands it sends with `call` leave with them.
   * For a caller that merges the requests of a turn into one command (the rate limiter's script).
   */
  beforeFlush (build: () => void): void {
    this.builders.push(build)
    this.schedule()
  }

  private schedule (): void {
    if (!this.scheduled) {
      this.scheduled = true
      setImmediate(this.flush)
    }
  }

  private readonly flush = (): void => {
    const builders = this.builders
    if (builders.length > 0) {
      this.builders = []
      for (let i = 0; i < builders.length; i++) builders[i]()
    }
    const batch = this.queue
    this.queue = []
    this.scheduled = false
    // Corked, the socket keeps the commands' writes and sends them in one system call on uncork. An ioredis
    // pipeline would do the same with more bookkeeping per batch; each command stays a plain one here, with its
    // own timeout and reply. (Before the connection exists there is no socket: the client queues them.)
    const socket = this.redis.stream as Redis['stream'] | undefined
    socket?.cork()
    for (let i = 0; i < batch.length; i++) this.redis.sendCommand(batch[i])
    socket?.uncork()
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

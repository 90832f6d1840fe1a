// Redis commands of the request path sent together (issue 16). Each command written on its own costs a socket
// write (a system call) and ioredis's per-command bookkeeping; under load that was the largest share of a cheap
// request's CPU. The rate-limit script and the response-cache read go through here instead: the commands issued
// during one turn of the event loop leave in one write (the socket corked) once the turn ends (setImmediate), and
// each caller gets its own reply or error, as if it had sent its command alone. Only commands whose caller awaits the
// reply use it, so nothing becomes visible later than the caller already waited for. ioredis's global
// auto-pipelining is not used: it would also defer fire-and-forget writes, which other replicas (and tests) expect
// to see as soon as the response that caused them.
// A TurnBatch goes one step further for a command that can serve many callers at once: the requests of a turn
// become one command (the limiter's script over every request's keys, one MGET for the cache reads). At 50
// connections a turn held about 19 requests: one command built, written, run by the server and parsed instead of 19.
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

/** How a TurnBatch sends a group of requests as one command. */
export interface BatchCommand<Request, Result> {
  /** The keys (or other units) a request adds to the command: it holds at most `maxUnits`. */
  units(request: Request): number
  maxUnits: number
  /** Sends `requests` (`units` in all) as one command (with TickPipeline.call); one result per request, in order. */
  send(requests: Request[], units: number): Promise<Result[]>
}

/**
 * Requests made during one turn of the event loop, sent as one command (several when they exceed `maxUnits`;
 * a request is never split) with the turn's other commands. A failed command fails every request in it.
 */
export class TurnBatch<Request, Result> {
  private requests: Request[] = []
  private answers: Array<{ resolve(result: Result): void, reject(error: unknown): void }> = []

  constructor (private readonly pipeline: TickPipeline, private readonly command: BatchCommand<Request, Result>) {}

  add (request: Request): Promise<Result> {
    return new Promise((resolve, reject) => {
      this.answers.push({ resolve, reject })
      if (this.requests.push(request) === 1) this.pipeline.beforeFlush(this.flush)
    })
  }

  private readonly flush = (): void => {
    const { requests, answers, command } = this
    this.requests = []
    this.answers = []
    let from = 0
    let units = 0
    for (let i = 0; i < requests.length; i++) {
      const n = command.units(requests[i])
      if (units > 0 && units + n > command.maxUnits) {
        this.send(requests.slice(from, i), answers.slice(from, i), units)
        from = i
        units = 0
      }
      units += n
    }
    // The rest (usually the whole turn: no copy then).
    if (from === 0) this.send(requests, answers, units)
    else this.send(requests.slice(from), answers.slice(from), units)
  }

  private send (requests: Request[], answers: TurnBatch<Request, Result>['answers'], units: number): void {
    let sent: Promise<Result[]>
    try {
      sent = this.command.send(requests, units)
    } catch (error) {
      sent = Promise.reject(error)
    }
    sent.then(results => {
      for (let i = 0; i < answers.length; i++) answers[i].resolve(results[i])
    }).catch((error: unknown) => {
      for (let i = 0; i < answers.length; i++) answers[i].reject(error)
    })
  }
}

// Event-loop stall accounting for the Redis circuit breaker: a command that timed out while this process was
// blocked (a long synchronous task, a GC pause) says nothing about Redis, whose reply may have been waiting
// unread on the socket. A short interval ticks in the timers phase; every loop turn that runs a tick then
// polls its sockets. So at any moment this process has surely read every reply that had arrived by the tick
// before the latest one: listenedSince(t) is how long after t that was, i.e. for how long a command sent at
// t has been given the chance to be answered. A stall ends that window where it began, however long it lasts.
/** Ticks every `tickMs` to bound when this process last read its sockets. */
export class LoopWatch {
  private last = performance.now()
  private previous = this.last
  private readonly timer: NodeJS.Timeout

  constructor (readonly tickMs = 20) {
    this.timer = setInterval(() => {
      this.previous = this.last
      this.last = performance.now()
    }, tickMs)
    this.timer.unref()
  }

  /**
   * Milliseconds after `since` (performance.now()) up to which every reply that had arrived has surely been
   * read: 0 when the loop has not polled since then (a stall began right after), else up to now − 2 ticks.
   */
  listenedSince (since: number): number {
    return Math.max(0, this.previous - since)
  }

  stop (): void { clearInterval(this.timer) }
}

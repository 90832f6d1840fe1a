// Event-loop stall detection for the Redis circuit breaker: a command that timed out while this process
// was blocked (a long synchronous task, a GC pause) says nothing about Redis, whose reply may have been
// waiting unread on the socket. A 20 ms interval notes its late ticks; stalledSince(t) says whether the
// loop was blocked longer than stallMs at any point since t (or is only now running again).
/** Notices event-loop stalls: a 20 ms interval whose late ticks mark when the loop was blocked. */
export class LoopWatch {
  private last = performance.now()
  private stallEnded = -Infinity
  private readonly timer: NodeJS.Timeout

  constructor (private readonly stallMs: number) {
    this.timer = setInterval(() => {
      const now = performance.now()
      if (now - this.last > stallMs) this.stallEnded = now
      this.last = now
    }, 20)
    this.timer.unref()
  }

  /** Whether the loop was blocked longer than stallMs at some point since `since` (or is only now running again). */
  stalledSince (since: number): boolean {
    return performance.now() - this.last > this.stallMs || this.stallEnded >= since
  }

  stop (): void { clearInterval(this.timer) }
}

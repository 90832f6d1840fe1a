// In-memory ring buffers of recent traces, one per key (an agent name, or 'workflow'), for
// GET /api/agents/:agent/traces. Fixed capacity: adding to a full buffer overwrites the oldest entry,
// so memory stays bounded however busy the service is. Per process by design: traces are a recent
// local log; the durable, cross-replica record is LangSmith (and the usage ledger).

export type TraceStatus = 'success' | 'error' | 'cancelled'

/** One finished run as listed by /traces (no prompt or output bodies: those go to LangSmith only). */
export interface TraceSummary {
  id: string
  parentId?: string
  name: string
  runType: string
  agent?: string
  operation: string
  model?: string
  status: TraceStatus
  cached?: boolean
  startTime: string
  endTime: string
  durationMs: number
  usage: { inputTokens: number, outputTokens: number, costUsd: number, estimated?: boolean }
  llmCalls: number
  timeToFirstTokenMs?: number
  callerId?: string
  error?: { code: string, message: string }
}

class Ring<T> {
  private readonly items: Array<T | undefined>
  private next = 0
  private count = 0

  constructor (readonly capacity: number) {
    this.items = new Array<T | undefined>(capacity)
  }

  push (item: T): void {
    this.items[this.next] = item
    this.next = (this.next + 1) % this.capacity
    if (this.count < this.capacity) this.count++
  }

  /** Newest first. */
  newest (limit: number): T[] {
    const out: T[] = []
    const n = Math.min(limit, this.count)
    for (let i = 1; i <= n; i++) out.push(this.items[(this.next - i + this.capacity) % this.capacity] as T)
    return out
  }

  get size (): number { return this.count }
}

export class TraceStore {
  private readonly rings = new Map<string, Ring<TraceSummary>>()

  constructor (readonly capacity = 1000) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('capacity must be a positive integer')
  }

  add (key: string, trace: TraceSummary): void {
    let ring = this.rings.get(key)
    if (!ring) {
      ring = new Ring<TraceSummary>(this.capacity)
      this.rings.set(key, ring)
    }
    ring.push(trace)
  }

  /** The most recent traces of `key`, newest first. */
  recent (key: string, limit = 100): TraceSummary[] {
    return this.rings.get(key)?.newest(Math.max(0, limit)) ?? []
  }

  size (key: string): number {
    return this.rings.get(key)?.size ?? 0
  }

  clear (key: string): void {
    this.rings.delete(key)
  }
}

// Exports run records to LangSmith through the real `langsmith` client as run trees: an agent call is
// a 'chain' run with its LLM calls as 'llm' child runs (token usage in outputs.usage_metadata), and
// agent calls nest under the stream or workflow run that made them.
//
// Never on the request path: export() only queues; the run tree is built and redacted in a later turn
// of the event loop, and the client batches uploads in the background (multipart /runs/multipart, or
// /runs/batch), swallowing its failures. Children usually finish before their parent, and a child's
// dotted order needs its parent's, so children wait (bounded) until their parent is recorded; a parent
// that never comes makes them roots. Sampling is decided once per tree, at its root. Redaction is the
// client's `anonymizer` (inputs, outputs, metadata and error strings). close() exports what still
// waits, flushes with a timeout, then cancels any request the client still tries, so shutdown never
// hangs on a dead endpoint.
import { createHash } from 'node:crypto'
import { Client, RunTree, uuid7FromTime } from 'langsmith'
import { redact } from './redact.js'
import { errorOf, type RunRecord } from './types.js'

export interface ExporterOptions {
  apiUrl: string
  apiKey: string
  projectName: string
  /** 0–1, decided per trace tree. */
  sampleRate: number
  log: { warn(obj: object, msg: string): void }
  /** How long a child waits for its parent before it is exported as a root. */
  orphanAfterMs?: number
  /** Most runs waiting for a parent; beyond it the oldest group is exported as roots. */
  maxPending?: number
  /** Recorded runs remembered so later children can find their parent. */
  maxKnown?: number
}

interface KnownRun {
  lsId: string
  traceId: string
  dottedOrder: string
  startTime: number
  childOrder: number
  sampled: boolean
  name: string
}

const CANCELLED = 'Cancelled: LangSmith exporter closed'

export class LangSmithExporter {
  readonly client: Client
  readonly counts = { exported: 0, sampledOut: 0, orphaned: 0, dropped: 0 }
  private readonly known = new Map<string, KnownRun>()
  private readonly pending = new Map<string, { since: number, runs: RunRecord[] }>()
  private pendingRuns = 0
  private readonly posting = new Set<Promise<void>>()
  private readonly queue: RunRecord[] = []
  private scheduled: NodeJS.Immediate | null = null
  private readonly sweeper: NodeJS.Timeout
  private closed = false

  constructor (private readonly options: ExporterOptions) {
    this.client = new Client({
      apiUrl: options.apiUrl,
      apiKey: options.apiKey,
      anonymizer: redact,
      tracingSamplingRate: 1, // sampled here, per tree
      autoBatchTracing: true,
      blockOnRootRunFinalization: false,
      disablePromptCache: true,
      timeout_ms: 10_000,
      callerOptions: { maxRetries: 2 },
      maxIngestMemoryBytes: 64 * 1024 * 1024,
      // After close, any retry the client still attempts fails at once ("Cancel…" stops its retries).
      fetchImplementation: ((input, init) =>
        this.closed ? Promise.reject(new Error(CANCELLED)) : fetch(input, init)) as typeof fetch
    })
    const orphanAfter = options.orphanAfterMs ?? 15 * 60_000
    this.sweeper = setInterval(() => this.releaseOrphans(Date.now() - orphanAfter), Math.min(orphanAfter, 30_000))
    this.sweeper.unref()
  }

  /**
   * Queues a finished run; returns at once and never throws. Building the run tree and redacting it
   * happen in a later turn of the event loop (setImmediate), after the reply that produced the run.
   */
  export (run: RunRecord): void {
    if (this.closed) { this.counts.dropped++; return }
    this.queue.push(run)
    if (this.queue.length > (this.options.maxPending ?? 10_000)) { this.queue.shift(); this.counts.dropped++ }
    this.scheduled ??= setImmediate(() => this.drain())
  }

  /** Sends everything queued; resolves true when done, false when the timeout came first. */
  async flush (timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<boolean>(resolve => { timer = setTimeout(() => resolve(false), timeoutMs) })
    this.drain()
    const done = (async () => {
      await Promise.allSettled([...this.posting])
      await this.client.flush()
      await this.client.awaitPendingTraceBatches()
      return true
    })().catch(() => false)
    try {
      return await Promise.race([done, timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  /** Exports runs still waiting for a parent (as roots), flushes, then stops all network activity. */
  async close (timeoutMs: number): Promise<boolean> {
    clearInterval(this.sweeper)
    this.drain()
    this.releaseOrphans(Infinity)
    const flushed = await this.flush(timeoutMs)
    this.closed = true
    return flushed
  }

  /** Runs not yet handed to the client: queued, or waiting for their parent. */
  get waiting (): number { return this.queue.length + this.pendingRuns }

  private drain (): void {
    if (this.scheduled) clearImmediate(this.scheduled)
    this.scheduled = null
    for (const run of this.queue.splice(0)) {
      try {
        const parent = run.parentId ? this.known.get(run.parentId) : undefined
        if (run.parentId && !parent) this.defer(run, run.parentId)
        else this.emit(run, parent)
      } catch (error) {
        this.options.log.warn(
          { err: error instanceof Error ? error.message : String(error), run: run.name },
          'langsmith export failed'
        )
      }
    }
  }

  private emit (run: RunRecord, parent?: KnownRun): void {
    const sampled = parent ? parent.sampled : this.sample(run.id)
    let info: KnownRun
    if (!sampled) {
      this.counts.sampledOut++
      info = {
        lsId: '',
        traceId: '',
        dottedOrder: '',
        startTime: run.startTime,
        childOrder: 1,
        sampled: false,
        name: run.name
      }
    } else {
      const config = this.runConfig(run)
      let tree: RunTree
      if (parent) {
        tree = this.parentTree(parent).createChild(config)
        parent.childOrder = tree.child_execution_order
      } else {
        tree = new RunTree({ ...config, project_name: this.options.projectName, client: this.client })
      }
      info = {
        lsId: tree.id,
        traceId: tree.trace_id,
        dottedOrder: tree.dotted_order,
        startTime: run.startTime,
        childOrder: tree.child_execution_order,
        sampled: true,
        name: run.name
      }
      const posting: Promise<void> = tree.postRun().catch(() => {}).finally(() => this.posting.delete(posting))
      this.posting.add(posting)
      this.counts.exported++
    }
    this.remember(run.id, info)
    const children = this.pending.get(run.id)
    if (children) {
      this.pending.delete(run.id)
      this.pendingRuns -= children.runs.length
      for (const child of children.runs) this.emit(child, info)
    }
  }

  private runConfig (run: RunRecord) {
    const error = errorOf(run.error)
    const outputs: Record<string, unknown> = { ...(run.outputs ?? {}) }
    if (run.usage) {
      outputs.usage_metadata = {
        input_tokens: run.usage.inputTokens,
        output_tokens: run.usage.outputTokens,
        total_tokens: run.usage.inputTokens + run.usage.outputTokens,
        ...(run.usage.costUsd !== undefined ? { total_cost: run.usage.costUsd } : {})
      }
    }
    const metadata: Record<string, unknown> = {
      ...run.metadata,
      trace_id: run.id,
      status: run.status ?? (error ? 'error' : 'success'),
      ...(run.agent ? { agent: run.agent } : {}),
      ...(run.operation ? { operation: run.operation } : {}),
      ...(run.cached !== undefined ? { cached: run.cached } : {}),
      ...(run.usage?.model
        ? { ls_model_name: run.usage.model, ls_provider: run.usage.model === 'offline' ? 'offline' : 'google_genai' }
        : {}),
      ...(run.usage?.estimated ? { usage_estimated: true } : {}),
      ...(run.timeToFirstTokenMs !== undefined ? { time_to_first_token_ms: run.timeToFirstTokenMs } : {})
    }
    return {
      id: uuid7FromTime(run.startTime),
      name: run.name,
      run_type: run.runType,
      start_time: run.startTime,
      end_time: run.endTime,
      inputs: run.inputs ?? {},
      outputs,
      ...(error ? { error: `${error.code}: ${error.message}` } : {}),
      ...(run.tags ? { tags: run.tags } : {}),
      extra: { metadata }
    }
  }

  /** A lightweight stand-in for a parent already sent, enough for createChild to compute the child's place. */
  private parentTree (parent: KnownRun): RunTree {
    return new RunTree({
      id: parent.lsId,
      name: parent.name,
      trace_id: parent.traceId,
      dotted_order: parent.dottedOrder,
      start_time: parent.startTime,
      child_execution_order: parent.childOrder,
      project_name: this.options.projectName,
      client: this.client
    })
  }

  private sample (rootId: string): boolean {
    const rate = this.options.sampleRate
    if (rate >= 1) return true
    if (rate <= 0) return false
    return createHash('sha1').update(rootId).digest().readUInt32BE(0) / 0x1_0000_0000 < rate
  }

  private defer (run: RunRecord, parentId: string): void {
    const group = this.pending.get(parentId) ?? { since: Date.now(), runs: [] }
    group.runs.push(run)
    this.pending.set(parentId, group)
    this.pendingRuns++
    const max = this.options.maxPending ?? 10_000
    while (this.pendingRuns > max) {
      const [oldest] = this.pending.keys()
      this.releaseGroup(oldest)
    }
  }

  private releaseOrphans (olderThan: number): void {
    for (const [parentId, group] of [...this.pending]) {
      if (group.since <= olderThan) this.releaseGroup(parentId)
    }
  }

  private releaseGroup (parentId: string): void {
    const group = this.pending.get(parentId)
    if (!group) return
    this.pending.delete(parentId)
    this.pendingRuns -= group.runs.length
    for (const run of group.runs) {
      this.counts.orphaned++
      this.emit({ ...run, parentId: undefined, metadata: { ...run.metadata, missing_parent_id: parentId } })
    }
  }

  private remember (id: string, info: KnownRun): void {
    this.known.set(id, info)
    const max = this.options.maxKnown ?? 10_000
    for (const oldest of this.known.keys()) {
      if (this.known.size <= max) break
      this.known.delete(oldest)
    }
  }
}

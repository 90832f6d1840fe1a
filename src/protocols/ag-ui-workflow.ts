// AG-UI for workflow runs: the coordinator's run events as AG-UI events. run-started → RUN_STARTED and a
// STATE_SNAPSHOT of the progress ({ runId, status, outputs: {} }); step-started → STEP_STARTED; token → one
// TEXT_MESSAGE_* per step; step-completed → TEXT_MESSAGE_END, STATE_DELTA (adds outputs/<step>), STEP_FINISHED;
// step-failed → TEXT_MESSAGE_END, STEP_FINISHED and CUSTOM amk.step-failed; the end → STATE_SNAPSHOT of the
// run view, then RUN_FINISHED (completed) or RUN_ERROR (failed, cancelled, or an error) with our code.
// Frame ids are `<coordinator runId>-<seq>`. A run followed live here replays every event from the start, so
// after a Last-Event-ID the frames up to it are skipped and the connection re-opens what is open (run, steps,
// messages) first: a valid AG-UI run by itself. A run that ended, or runs on another replica, is sent whole
// as a summary (RUN_STARTED, the final STATE_SNAPSHOT, RUN_FINISHED or RUN_ERROR).
import type { ServerResponse } from 'node:http'
import { EventType, type AGUIEvent } from '@ag-ui/core'
import { toStepError } from '../coordinator/engine.js'
import type { RunHandle, RunView } from '../coordinator/service.js'
import type { EngineEvent, StepRef, StepResult } from '../coordinator/types.js'
import { SseConnection } from '../streams/connection.js'
import { CUSTOM_PREFIX, encodeAgUi, tokenUsage, type AgUiRun } from './ag-ui.js'

export interface WorkflowStreamOptions {
  heartbeatMs: number
  retryMs: number
  /** Frames up to this position (of this run) were delivered before: not written again. */
  afterSeq: number
  /** 'cancel': the client that started the run going away cancels it (a joined run is never cancelled). */
  onDisconnect: 'cancel' | 'continue'
}

const pointer = (name: string) => name.replace(/~/g, '~0').replace(/\//g, '~1')

/** Keeps what is open (steps, one text message per step) and turns run events into AG-UI events. */
class WorkflowTranslator {
  private readonly openSteps = new Map<number, string>()
  private readonly openMessages = new Map<number, string>()
  private readonly outputs: Record<string, unknown> = {}

  constructor (private readonly run: AgUiRun, private readonly handle: RunHandle) {}

  stepName (step: Pick<StepRef, 'index' | 'id' | 'agent' | 'method'>): string {
    return step.id ?? `${step.index}:${step.agent}.${step.method}`
  }

  private messageId (index: number) {
    return `${this.handle.runId}-step-${index}`
  }

  started (): AGUIEvent[] {
    const { runId, workflowName, replayed } = this.handle
    return [
      {
        type: EventType.RUN_STARTED,
        ...this.run,
        metadata: { coordinatorRunId: runId, ...(workflowName ? { workflowName } : {}), replayed }
      },
      { type: EventType.STATE_SNAPSHOT, snapshot: { runId, status: 'running', outputs: { ...this.outputs } } }
    ]
  }

  /** What a connection that starts after the beginning sends first. */
  reopen (): AGUIEvent[] {
    return [
      ...this.started(),
      ...[...this.openSteps.values()].map((stepName): AGUIEvent => ({ type: EventType.STEP_STARTED, stepName })),
      ...[...this.openMessages.values()].map((messageId): AGUIEvent =>
        ({ type: EventType.TEXT_MESSAGE_START, messageId, role: 'assistant' }))
    ]
  }

  private finishStep (step: StepResult): AGUIEvent[] {
    const out: AGUIEvent[] = []
    const messageId = this.openMessages.get(step.index)
    if (messageId) out.push({ type: EventType.TEXT_MESSAGE_END, messageId })
    this.openMessages.delete(step.index)
    const stepName = this.openSteps.get(step.index)
    this.openSteps.delete(step.index)
    if (step.status === 'completed') {
      const name = this.stepName(step)
      this.outputs[name] = step.data ?? null
      const path = `/outputs/${pointer(name)}`
      out.push({ type: EventType.STATE_DELTA, delta: [{ op: 'add', path, value: step.data ?? null }] })
    }
    if (stepName) out.push({ type: EventType.STEP_FINISHED, stepName })
    return out
  }

  event (event: EngineEvent): AGUIEvent[] {
    switch (event.event) {
      case 'step-started': {
        const stepName = this.stepName(event.data)
        this.openSteps.set(event.data.index, stepName)
        return [{ type: EventType.STEP_STARTED, stepName }]
      }
      case 'token': {
        const { index, chunk } = event.data
        if (!chunk) return []
        const out: AGUIEvent[] = []
        let messageId = this.openMessages.get(index)
        if (!messageId) {
          messageId = this.messageId(index)
          this.openMessages.set(index, messageId)
          out.push({ type: EventType.TEXT_MESSAGE_START, messageId, role: 'assistant' })
        }
        out.push({ type: EventType.TEXT_MESSAGE_CONTENT, messageId, delta: chunk })
        return out
      }
      case 'step-completed':
        return this.finishStep(event.data)
      case 'step-failed':
        return [
          ...this.finishStep(event.data),
          {
            type: EventType.CUSTOM,
            name: `${CUSTOM_PREFIX}step-failed`,
            value: { stepName: this.stepName(event.data), status: event.data.status, error: event.data.error }
          }
        ]
    }
  }

  /** Closes what is still open (a run that ended while steps ran), then the snapshot and the run's end. */
  finished (view: RunView): AGUIEvent[] {
    const out: AGUIEvent[] = [
      ...[...this.openMessages.values()].map((messageId): AGUIEvent =>
        ({ type: EventType.TEXT_MESSAGE_END, messageId })),
      ...[...this.openSteps.values()].map((stepName): AGUIEvent => ({ type: EventType.STEP_FINISHED, stepName }))
    ]
    this.openMessages.clear()
    this.openSteps.clear()
    out.push({ type: EventType.STATE_SNAPSHOT, snapshot: view })
    const usage = [tokenUsage(view.usage)]
    if (view.status === 'completed') {
      out.push({ type: EventType.RUN_FINISHED, ...this.run, result: view.result, outcome: { type: 'success' }, usage })
    } else {
      const code = view.error?.code ?? (view.status === 'cancelled' ? 'AMK_CANCELLED' : 'AMK_INTERNAL')
      out.push({ type: EventType.RUN_ERROR, code, message: view.error?.message ?? `The run ${view.status}`, usage })
    }
    return out
  }

  failed (error: unknown): AGUIEvent[] {
    const { code, message } = toStepError(error)
    return [{ type: EventType.RUN_ERROR, code, message }]
  }
}

/** Streams a run as AG-UI on a response taken over with openSse (src/routes/toolkit.ts). */
export async function streamWorkflowAgUi (
  res: ServerResponse,
  headers: Record<string, string | string[] | number>,
  handle: RunHandle,
  run: AgUiRun,
  options: WorkflowStreamOptions
): Promise<void> {
  const { runId } = handle
  // Only a run followed live here has its events from the start; any other is sent whole (a summary).
  const afterSeq = handle.subscribe ? options.afterSeq : 0
  const connection = new SseConnection(res, runId, afterSeq)
  connection.open(headers, options.retryMs)
  const translator = new WorkflowTranslator(run, handle)
  let seq = 0
  let live = afterSeq === 0
  let writing: Promise<unknown> = Promise.resolve()
  /** The run's end is always written, so a connection never ends without RUN_FINISHED or RUN_ERROR. */
  const send = (translate: () => AGUIEvent[], end = false) => {
    const position = ++seq
    if (position <= afterSeq && !end) {
      translate() // keeps what is open; delivered before
      return
    }
    const events = live ? translate() : [...translator.reopen(), ...translate()]
    live = true
    const id = `${runId}-${position}`
    const text = encodeAgUi(events, id)
    writing = writing.then(() => connection.write(text, id))
  }

  send(() => translator.started())
  const unsubscribe = handle.subscribe?.(event => send(() => translator.event(event))) ?? (() => {})
  const heartbeat = setInterval(() => connection.heartbeat(), options.heartbeatMs)
  connection.signal.addEventListener('abort', () => {
    if (connection.endReason === 'client-closed' && options.onDisconnect === 'cancel') handle.cancel()
  }, { once: true })
  try {
    const view = await handle.done
    send(() => translator.finished(view), true)
  } catch (error) {
    send(() => translator.failed(error), true)
  } finally {
    unsubscribe()
    clearInterval(heartbeat)
    await writing
    connection.end()
  }
}

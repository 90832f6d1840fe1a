// A predefined workflow run as one MCP tool call: started through the coordinator exactly as
// POST /api/coordinator/workflow starts it, its step events reported as progress, cancelled when the
// call is (the run's in-flight provider calls are aborted), and a run that did not complete reported
// as a tool error carrying the run's own error code, with the run in `details`.
import type { Coordinator, RunView } from '../coordinator/service.js'
import type { WorkflowSpec } from '../coordinator/types.js'
import type { ToolContext } from './mcp-tools.js'

/** A run that ended without completing, as an error of this API's shape (AMK_… code, message, details). */
export class RunNotCompletedError extends Error {
  readonly code: string
  readonly details: { run: RunView }
  constructor (run: RunView) {
    super(run.error?.message ?? `The workflow run ended ${run.status}`)
    this.code = run.error?.code ?? (run.status === 'cancelled' ? 'AMK_CANCELLED' : 'AMK_INTERNAL')
    this.details = { run }
  }
}

export async function runWorkflow (
  coordinator: Coordinator,
  workflowName: string,
  input: Record<string, unknown>,
  spec: WorkflowSpec,
  ctx: ToolContext
): Promise<RunView> {
  const handle = await coordinator.start({
    caller: ctx.caller,
    kind: 'workflow',
    body: { workflowName, input },
    spec,
    workflowName,
    signal: ctx.signal
  })
  const cancel = () => handle.cancel()
  ctx.signal.addEventListener('abort', cancel, { once: true })
  if (ctx.signal.aborted) cancel()
  // Progress: one unit when a step starts and one when it ends, out of two per step.
  const total = handle.steps.length * 2
  let done = 0
  const unsubscribe = ctx.progress && handle.subscribe
    ? handle.subscribe(event => {
      if (event.event === 'token') return
      const { index, agent, method } = event.data
      const what = event.event === 'step-started' ? 'started' : event.data.status
      ctx.progress!(++done, total, `step ${index + 1}/${handle.steps.length} ${agent}.${method} ${what}`)
    })
    : () => {}
  try {
    const view = await handle.done
    if (view.status !== 'completed') throw new RunNotCompletedError(view)
    return view
  } finally {
    unsubscribe()
    ctx.signal.removeEventListener('abort', cancel)
  }
}

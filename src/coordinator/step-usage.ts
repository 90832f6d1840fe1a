// What a failed step spent. A successful invoke reports its usage; a failed one throws. Every provider
// call made inside a step's invoke — a composite method's sub-calls and an aborted call included — is
// reported to the agent service's onLlmCall hook in the step's async context, so it is summed here and
// attached to the thrown error as `usage` for the engine.
import { AsyncLocalStorage } from 'node:async_hooks'
import type { AgentServiceHooks, InvokeRequest, InvokeResult, InvokeUsage } from '../agents/types.js'

interface Tally {
  inputTokens: number
  outputTokens: number
  costUsd: number
  models: Set<string>
  estimated: boolean
  calls: number
}

export interface InvokingAgents {
  invoke(req: InvokeRequest): Promise<InvokeResult>
  addHooks(hooks: AgentServiceHooks): void
}

/** `agents.invoke`, with the usage of a failed call attached to its error. */
export function invokeWithStepUsage (agents: InvokingAgents): (request: InvokeRequest) => Promise<InvokeResult> {
  const scope = new AsyncLocalStorage<Tally>()
  agents.addHooks({
    onLlmCall (record) {
      const tally = scope.getStore()
      if (!tally) return
      tally.inputTokens += record.usage.inputTokens
      tally.outputTokens += record.usage.outputTokens
      tally.costUsd = Math.round((tally.costUsd + record.costUsd) * 1e8) / 1e8
      tally.models.add(record.model)
      tally.estimated ||= record.usage.estimated ?? false
      tally.calls++
    }
  })
  return (request) => {
    const tally: Tally = { inputTokens: 0, outputTokens: 0, costUsd: 0, models: new Set(), estimated: false, calls: 0 }
    return scope.run(tally, async () => {
      try {
        return await agents.invoke(request)
      } catch (error) {
        if (tally.calls > 0 && error && typeof error === 'object') {
          const usage: InvokeUsage = {
            inputTokens: tally.inputTokens,
            outputTokens: tally.outputTokens,
            costUsd: tally.costUsd,
            model: [...tally.models].join('+'),
            ...(tally.estimated ? { estimated: true } : {})
          }
          try { Object.defineProperty(error, 'usage', { value: usage, configurable: true }) } catch {}
        }
        throw error
      }
    })
  }
}

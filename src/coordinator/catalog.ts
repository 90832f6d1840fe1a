// The catalog a workflow is checked against: the agents' methods and their input schemas. Validation is
// the agent service's own (src/agents/validate.ts: defaults applied to a copy, unknown fields rejected,
// cross-field refinements), so a step that passes here is not refused by invoke for its shape.
import { findAgent, findMethod } from '../agents/index.js'
import type { AgentDefinition } from '../agents/types.js'
import { validateInput } from '../agents/validate.js'
import type { DetailedError } from '../errors.js'
import type { Catalog, FieldProblem } from './types.js'

/** Field paths relative to the method input (the agent service prefixes them with `input`). */
const relative = (field: string) => field.replace(/^input(\.|$)/, '')

export function createCatalog (definitions: Record<string, AgentDefinition>): Catalog {
  const names = Object.fromEntries(Object.entries(definitions).map(([agent, def]) => [agent, Object.keys(def.methods)]))
  return {
    methods: () => names,
    validate (agent, method, input) {
      const spec = findMethod(findAgent(definitions, agent), method)
      if (!spec) return null
      try {
        validateInput(spec.input, input, spec.refine)
        return []
      } catch (error) {
        const details = (error as DetailedError).details
        if (!Array.isArray(details)) throw error
        return (details as FieldProblem[]).map(p => ({ field: relative(p.field), message: p.message }))
      }
    }
  }
}

// The agents' components: every method's input and output as a named schema (TravelSearchFlightsInput,
// ContentGenerateBlogPostOutput…) and the usage block of an invoke reply. The method list is the agent
// registry's (src/agents/index.ts); the schemas do not depend on configuration.
import { Type, type TSchema } from 'typebox'
import { createAgentDefinitions, schemaId } from '../agents/index.js'

export const InvokeUsageSchema = Type.Object({
  inputTokens: Type.Integer({ minimum: 0 }),
  outputTokens: Type.Integer({ minimum: 0 }),
  costUsd: Type.Number({ minimum: 0, description: 'USD, from the price table' }),
  model: Type.String({ description: 'Model(s) that produced the data; "offline" for the offline provider' }),
  estimated: Type.Optional(Type.Boolean({ description: 'Token counts were estimated (the provider reported none)' }))
}, { $id: 'InvokeUsage', additionalProperties: false })

/** One component per method input and output, keyed by component name. */
const methodComponents = new Map<string, TSchema>()
for (const definition of Object.values(createAgentDefinitions())) {
  for (const method of Object.values(definition.methods)) {
    for (const [part, schema] of [['Input', method.input], ['Output', method.output]] as const) {
      const $id = schemaId(definition.name, method.name, part)
      methodComponents.set($id, { ...schema, $id })
    }
  }
}

/** The component of a method's input or output, for ref(). */
export function methodSchema (agent: string, method: string, part: 'Input' | 'Output'): TSchema {
  const schema = methodComponents.get(schemaId(agent, method, part))
  if (!schema) throw new Error(`No component for ${agent}.${method} ${part}`)
  return schema
}

/** Components of the agent routes. */
export const agentSchemas: TSchema[] = [InvokeUsageSchema, ...methodComponents.values()]

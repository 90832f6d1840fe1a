// The three agents and their definitions, the lookups by a client-sent name, and the offline builder
// the offline provider uses.
import type { OfflineBuilder } from '../llm/offline.js'
import { createContentAgent } from './content/index.js'
import { createInnovationAgent } from './innovation/index.js'
import { createTravelAgent } from './travel/index.js'
import type { PlacesClient } from './travel/places.js'
import type { AgentDefinition, AgentMethod, AgentName } from './types.js'
import { isRecord } from './unknown-values.js'

export const AGENT_NAMES: readonly AgentName[] = ['travel', 'content', 'innovation']

export interface DefinitionOptions {
  /** Google Places client for hotel search (GOOGLE_MAPS_API_KEY). */
  places?: PlacesClient
  onPlacesError?: (error: Error) => void
}

export function createAgentDefinitions (options: DefinitionOptions = {}): Record<AgentName, AgentDefinition> {
  return {
    travel: createTravelAgent(options),
    content: createContentAgent(),
    innovation: createInnovationAgent()
  }
}

/**
 * Every lookup by a name a client sent goes through these: own properties only, so `__proto__`,
 * `constructor`, `toString`… are unknown names like any other, never something from Object.prototype.
 */
export function ownEntry<T> (table: Readonly<Record<string, T>>, name: string): T | undefined {
  return Object.hasOwn(table, name) ? table[name] : undefined
}

export function findAgent (
  definitions: Readonly<Record<string, AgentDefinition>>,
  name: string
): AgentDefinition | undefined {
  return ownEntry(definitions, name)
}

export function findMethod (definition: AgentDefinition | undefined, name: string): AgentMethod | undefined {
  return definition ? ownEntry(definition.methods, name) : undefined
}

/** The offline output of a method, when the method defines a builder. */
export function offlineBuilder (
  definitions: Record<AgentName, AgentDefinition> = createAgentDefinitions()
): OfflineBuilder {
  return ({ agent, method, input }) =>
    isRecord(input) ? findMethod(findAgent(definitions, agent), method)?.offline?.(input) : undefined
}

/** OpenAPI component names: TravelSearchFlightsInput, ContentGenerateBlogPostOutput… */
export function schemaId (agent: string, method: string, part: 'Input' | 'Output'): string {
  const cap = (s: string) => s[0].toUpperCase() + s.slice(1)
  return `${cap(agent)}${cap(method)}${part}`
}

export type { AgentDefinition, AgentName }

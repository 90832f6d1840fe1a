// The three agents and their definitions, plus the offline builder the offline provider uses.
import type { OfflineBuilder } from '../llm/offline.js'
import { createContentAgent } from './content/index.js'
import { createInnovationAgent } from './innovation/index.js'
import { createTravelAgent } from './travel/index.js'
import type { PlacesClient } from './travel/places.js'
import type { AgentDefinition, AgentName } from './types.js'

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

/** The offline output of a method, when the method defines a builder. */
export function offlineBuilder (definitions: Record<AgentName, AgentDefinition> = createAgentDefinitions()): OfflineBuilder {
  return ({ agent, method, input }) => {
    const definition = Object.hasOwn(definitions, agent) ? definitions[agent as AgentName] : undefined
    const found = definition && Object.hasOwn(definition.methods, method) ? definition.methods[method] : undefined
    return found?.offline?.(input as Record<string, unknown>)
  }
}

/** OpenAPI component names: TravelSearchFlightsInput, ContentGenerateBlogPostOutput… */
export function schemaId (agent: string, method: string, part: 'Input' | 'Output'): string {
  const cap = (s: string) => s[0].toUpperCase() + s.slice(1)
  return `${cap(agent)}${cap(method)}${part}`
}

export type { AgentDefinition, AgentName }

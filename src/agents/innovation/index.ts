// The innovation agent (pro model): ideas, trends, competitors, validation and business model canvases.
import { defineAgent, type AgentDefinition } from '../types.js'
import { generateIdeas } from './ideas.js'
import { analyzeCompetitors, analyzeTrends } from './market.js'
import { createBusinessModelCanvas, validateIdea } from './validation.js'

export function createInnovationAgent (): AgentDefinition {
  const methods = [generateIdeas, analyzeTrends, analyzeCompetitors, validateIdea, createBusinessModelCanvas]
  return defineAgent({
    name: 'innovation',
    description:
      'Innovation: business ideas, trend analysis, competitive analysis, idea validation and business model canvases',
    defaultModel: 'pro',
    rateLimit: 30,
    capabilities: [
      'idea-generation',
      'trend-analysis',
      'competitive-analysis',
      'idea-validation',
      'business-model-canvas'
    ],
    methods
  })
}

// innovation.validateIdea and innovation.createBusinessModelCanvas: scoring an idea and laying out
// its business model.
import { Type, type Static } from 'typebox'
import { Estimate, Input, Output, Strings, Text } from '../schema-kit.js'
import { buildPrompt, SYSTEM } from '../prompt.js'
import { clip, seedOf } from '../offline-kit.js'
import { defineMethod } from '../types.js'

const Score = Type.Integer({ minimum: 0, maximum: 10 })

export const ValidateIdeaInput = Input({
  idea: Text(10, 2000, 'The idea to validate'),
  targetMarket: Text(2, 300, 'Who would pay', { examples: ['Small travel agencies in Egypt'] }),
  budget: Type.Optional(Type.Number({ minimum: 0, maximum: 100_000_000, description: 'Available budget in USD' })),
  timeline: Type.Integer({ minimum: 1, maximum: 60, default: 6, description: 'Months until launch' })
}, 'Idea validation request')

export const ValidateIdeaOutput = Output(
  {
    idea: Type.String(),
    verdict: Type.Enum(['promising', 'needs-work', 'high-risk']),
    score: Type.Integer({ minimum: 0, maximum: 100 }),
    scores: Type.Object(
      { marketDemand: Score, feasibility: Score, competition: Score, profitability: Score },
      { additionalProperties: false }
    ),
    strengths: Strings(8, ''),
    risks: Strings(8, ''),
    assumptionsToTest: Type.Array(
      Type.Object(
        { assumption: Type.String({ maxLength: 300 }), experiment: Type.String({ maxLength: 500 }) },
        { additionalProperties: false }
      ),
      { maxItems: 8 }
    ),
    budgetAssessment: Type.String({ maxLength: 800 }),
    nextSteps: Strings(8, ''),
    source: Estimate
  },
  'An assessment of the idea; scores are judgements, not measurements'
)

function validateOffline (input: Static<typeof ValidateIdeaInput>): Static<typeof ValidateIdeaOutput> {
  const seed = seedOf(input.idea.toLowerCase())
  const scores = {
    marketDemand: 4 + (seed % 4),
    feasibility: input.timeline >= 6 ? 6 : 4,
    competition: 3 + ((seed >> 3) % 4),
    profitability: 4 + ((seed >> 5) % 4)
  }
  const score = Math.round((scores.marketDemand + scores.feasibility + scores.competition + scores.profitability) * 2.5)
  return {
    idea: input.idea,
    verdict: score >= 65 ? 'promising' : score >= 45 ? 'needs-work' : 'high-risk',
    score,
    scores,
    strengths: [`A clearly named market: ${input.targetMarket}`],
    risks: [
      'Demand is unproven until customers pay',
      `A ${input.timeline}-month timeline leaves little room for iteration`
    ],
    assumptionsToTest: [
      {
        assumption: clip(`${input.targetMarket} have this problem often`, 300),
        experiment: 'Ten customer interviews this month'
      },
      { assumption: 'They will pay for a solution', experiment: 'A landing page with a pre-order button' }
    ],
    budgetAssessment:
      input.budget !== undefined
        ? `With USD ${input.budget}, fund validation first and keep most of it for after the first paying customers.`
        : 'No budget given: start with experiments that cost under USD 500.',
    nextSteps: ['Write down the riskiest assumption', 'Run the cheapest experiment that tests it'],
    source: 'llm-estimate'
  }
}

export const validateIdea = defineMethod({
  name: 'validateIdea',
  summary: 'Scores an idea on demand, feasibility, competition and profitability, with experiments to run',
  input: ValidateIdeaInput,
  output: ValidateIdeaOutput,
  cacheTtl: 3600,
  rateLimit: 30,
  temperature: 0.4,
  prompt: (input) => ({
    system: SYSTEM.innovation,
    prompt: buildPrompt('Validate this business idea honestly.', input, [
      'score is 0–100 and consistent with the four 0–10 sub-scores (sum × 2.5).',
      'verdict: promising ≥ 65, needs-work 45–64, high-risk below 45.',
      'source is "llm-estimate".'
    ])
  }),
  offline: validateOffline
})

export const CanvasInput = Input({
  idea: Text(10, 2000, 'The business idea'),
  industry: Text(2, 100, 'Industry', { default: 'technology' })
}, 'Business model canvas request')

const Block = (description: string) => Strings(8, description)

export const CanvasOutput = Output({
  idea: Type.String(),
  canvas: Type.Object({
    keyPartners: Block('Partners and suppliers'),
    keyActivities: Block('What the business must do'),
    keyResources: Block('What it needs'),
    valuePropositions: Block('Why customers choose it'),
    customerRelationships: Block('How it keeps customers'),
    channels: Block('How it reaches them'),
    customerSegments: Block('Who it serves'),
    costStructure: Block('Main costs'),
    revenueStreams: Block('How it earns')
  }, { additionalProperties: false }),
  summary: Type.String({ maxLength: 1500 })
}, 'The nine blocks of a business model canvas')

function canvasOffline (input: Static<typeof CanvasInput>): Static<typeof CanvasOutput> {
  const short = input.idea.length > 80 ? `${input.idea.slice(0, 79)}…` : input.idea
  return {
    idea: input.idea,
    canvas: {
      keyPartners: [`Distribution partners in ${input.industry}`, 'Technology and payment providers'],
      keyActivities: ['Product development', 'Customer acquisition', 'Customer support'],
      keyResources: ['Product team', 'Customer data and feedback', 'Brand'],
      valuePropositions: [`Solves the core need behind "${short}"`],
      customerRelationships: ['Self-service onboarding', 'Community and support'],
      channels: ['Website and search', 'Partnerships', 'Social media'],
      customerSegments: [`Early adopters in ${input.industry}`],
      costStructure: ['Salaries', 'Infrastructure', 'Marketing'],
      revenueStreams: ['Subscriptions', 'Transaction fees']
    },
    summary: `Offline canvas for ${short} in ${input.industry}: a starting template to refine with customer evidence.`
  }
}

export const createBusinessModelCanvas = defineMethod({
  name: 'createBusinessModelCanvas',
  summary: 'A business model canvas (nine blocks) for an idea',
  input: CanvasInput,
  output: CanvasOutput,
  cacheTtl: 7200,
  rateLimit: 30,
  temperature: 0.6,
  prompt: (input) => ({
    system: SYSTEM.innovation,
    prompt: buildPrompt(`Create a business model canvas for this ${input.industry} idea.`, input, [
      'Two to six specific entries per block; specific to this idea, not generic.'
    ])
  }),
  offline: canvasOffline
})

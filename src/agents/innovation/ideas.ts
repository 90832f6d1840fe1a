// innovation.generateIdeas: business ideas for an industry, problem and target customer.
import { Type, type Static } from 'typebox'
import { Choice, Estimate, Input, Output, Strings, Text } from '../schema-kit.js'
import { buildPrompt, SYSTEM } from '../prompt.js'
import { pick, seedOf, titleCase } from '../offline-kit.js'
import { defineMethod } from '../types.js'

export const BUDGET_LEVELS = ['low', 'medium', 'high'] as const
const LEVEL = Type.Enum(['low', 'medium', 'high'])
const START_COST: Record<string, [number, number]> = {
  low: [2_000, 25_000],
  medium: [25_000, 250_000],
  high: [250_000, 2_000_000]
}

export const IdeasInput = Input({
  industry: Text(2, 100, 'Industry or market', { examples: ['travel'] }),
  problem: Type.Optional(Text(3, 500, 'Problem to solve')),
  target: Text(2, 200, 'Target customers', { default: 'startups' }),
  count: Type.Integer({ minimum: 1, maximum: 15, default: 5 }),
  budget: Choice(BUDGET_LEVELS, 'Available starting budget', 'low')
}, 'Idea generation request')

export const IdeasOutput = Output(
  {
    ideas: Type.Array(
      Type.Object(
        {
          title: Type.String({ maxLength: 150 }),
          description: Type.String({ maxLength: 1500 }),
          targetCustomer: Type.String({ maxLength: 300 }),
          problemSolved: Type.String({ maxLength: 600 }),
          revenueModel: Type.String({ maxLength: 300 }),
          estimatedStartupCost: Type.Object(
            {
              min: Type.Number({ minimum: 0 }),
              max: Type.Number({ minimum: 0 }),
              currency: Type.String({ minLength: 3, maxLength: 3 })
            },
            { additionalProperties: false }
          ),
          difficulty: LEVEL,
          innovationScore: Type.Integer({ minimum: 1, maximum: 10 })
        },
        { additionalProperties: false }
      ),
      { minItems: 1, maxItems: 15 }
    ),
    insights: Strings(8, 'Observations about the market'),
    recommendations: Strings(8, 'What to do next'),
    source: Estimate
  },
  'Business ideas; costs and scores are estimates'
)

type In = Static<typeof IdeasInput>

const PATTERNS = [
  { name: 'marketplace', model: 'Commission per transaction', text: 'A marketplace connecting' },
  { name: 'copilot', model: 'Monthly subscription per seat', text: 'An AI assistant that helps' },
  { name: 'analytics', model: 'Tiered SaaS subscription', text: 'A dashboard that shows' },
  { name: 'automation', model: 'Usage-based pricing', text: 'A workflow tool that automates work for' },
  { name: 'community', model: 'Membership plus sponsored content', text: 'A paid community and resource hub for' },
  { name: 'service', model: 'Fixed-fee packages', text: 'A productised service for' }
]

function offline (input: In): Static<typeof IdeasOutput> {
  const seed = seedOf(`${input.industry}|${input.problem ?? ''}`.toLowerCase())
  const problem = input.problem ?? `a costly, manual part of ${input.industry}`
  const [min, max] = START_COST[input.budget]
  const ideas = Array.from({ length: input.count }, (_, i) => {
    const pattern = pick(PATTERNS, seed, i)
    const repeatSuffix = i >= PATTERNS.length ? ` ${Math.floor(i / PATTERNS.length) + 1}` : ''
    return {
      title: `${titleCase(input.industry)} ${titleCase(pattern.name)}${repeatSuffix}`,
      description: `${pattern.text} ${input.target} in ${input.industry}, addressing ${problem}.`,
      targetCustomer: input.target,
      problemSolved: problem,
      revenueModel: pattern.model,
      estimatedStartupCost: { min, max, currency: 'USD' },
      difficulty: pick(['low', 'medium', 'high'] as const, seed, i),
      innovationScore: 4 + ((seed >> i) % 6)
    }
  })
  return {
    ideas,
    insights: [`Offline ideas are patterns applied to ${input.industry}; connect a model for market-specific insight.`],
    recommendations: [
      `Interview ten ${input.target} about ${problem} before building anything.`,
      'Pick the idea with the shortest path to a paying customer.'
    ],
    source: 'llm-estimate'
  }
}

export const generateIdeas = defineMethod({
  name: 'generateIdeas',
  summary: 'Business ideas with revenue model, startup cost and difficulty',
  input: IdeasInput,
  output: IdeasOutput,
  cacheTtl: 7200,
  rateLimit: 10,
  temperature: 1,
  prompt: input => ({
    system: SYSTEM.innovation,
    prompt: buildPrompt(
      `Generate ${input.count} distinct business ideas in ${input.industry} for ${input.target}.`,
      input,
      [
        'Each idea must be concrete enough to test within a month.',
        `estimatedStartupCost is a USD range fitting a ${input.budget} budget; source is "llm-estimate".`
      ]
    )
  }),
  offline
})

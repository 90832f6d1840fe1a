// innovation.analyzeTrends and innovation.analyzeCompetitors: market trends and a competitive landscape.
import { Type, type Static } from 'typebox'
import { Choice, Estimate, Input, Output, Strings, Text, TextList } from '../schema-kit.js'
import { buildPrompt, SYSTEM } from '../prompt.js'
import { pick, seedOf } from '../offline-kit.js'
import { defineMethod } from '../types.js'

const TIMEFRAMES = ['6-months', '1-year', '3-years', '5-years'] as const
const DEPTHS = ['quick', 'standard', 'deep'] as const
const LEVEL = Type.Enum(['low', 'medium', 'high'])

export const TrendsInput = Input({
  industry: Text(2, 100, 'Industry or market', { examples: ['travel tech'] }),
  timeframe: Choice(TIMEFRAMES, 'Horizon', '1-year'),
  depth: Choice(DEPTHS, 'How thorough', 'standard')
}, 'Trend analysis request')

export const TrendsOutput = Output({
  industry: Type.String(),
  timeframe: Type.String(),
  summary: Type.String({ maxLength: 2000 }),
  trends: Type.Array(Type.Object({
    name: Type.String({ maxLength: 150 }),
    description: Type.String({ maxLength: 1000 }),
    momentum: Type.Enum(['emerging', 'growing', 'mature', 'declining']),
    impact: LEVEL,
    signals: Strings(6, 'Evidence to watch')
  }, { additionalProperties: false }), { minItems: 1, maxItems: 12 }),
  opportunities: Strings(10, ''),
  threats: Strings(10, ''),
  source: Estimate
}, 'Trends from the model\'s knowledge; verify with current data')

const DRIVERS = [
  'AI-assisted workflows',
  'Personalisation at scale',
  'Sustainability requirements',
  'Embedded payments',
  'Remote and hybrid work',
  'Regulation and data privacy',
  'Creator-led distribution',
  'Vertical SaaS'
]

function trendsOffline (input: Static<typeof TrendsInput>): Static<typeof TrendsOutput> {
  const seed = seedOf(input.industry.toLowerCase())
  const count = input.depth === 'quick' ? 3 : input.depth === 'standard' ? 5 : 8
  const names = Array.from({ length: count }, (_, i) => pick(DRIVERS, seed, i))
  return {
    industry: input.industry,
    timeframe: input.timeframe,
    summary: `Offline outline: general forces likely to shape ${input.industry} over ${input.timeframe}; ` +
      'connect a model for specific analysis.',
    trends: names.map((name, i) => ({
      name: `${name} in ${input.industry}`,
      description: `How ${name.toLowerCase()} could change ${input.industry} over ${input.timeframe}.`,
      momentum: pick(['emerging', 'growing', 'mature'] as const, seed, i),
      impact: pick(['medium', 'high', 'low'] as const, seed, i),
      signals: [`Funding announcements in ${input.industry}`, 'Job postings mentioning it']
    })),
    opportunities: [`Tools that help ${input.industry} companies adopt ${names[0].toLowerCase()}`],
    threats: ['Incumbents adding the same features', 'Regulatory change'],
    source: 'llm-estimate'
  }
}

export const analyzeTrends = defineMethod({
  name: 'analyzeTrends',
  summary: 'Trends in an industry with momentum, impact, opportunities and threats',
  input: TrendsInput,
  output: TrendsOutput,
  cacheTtl: 86400,
  rateLimit: 15,
  temperature: 0.6,
  prompt: (input) => ({
    system: SYSTEM.innovation,
    prompt: buildPrompt(`Analyse the main trends in ${input.industry} over ${input.timeframe}.`, input, [
      'Name observable signals for each trend; do not invent statistics.',
      'source is "llm-estimate".'
    ])
  }),
  offline: trendsOffline
})

export const CompetitorsInput = Input({
  idea: Text(10, 2000, 'The product or business idea', { examples: ['An app that plans halal-friendly trips'] }),
  competitors: TextList(10, 100, 'Known competitors (optional)', { default: [] })
}, 'Competitive analysis request')

export const CompetitorsOutput = Output({
  idea: Type.String(),
  competitors: Type.Array(Type.Object({
    name: Type.String({ maxLength: 150 }),
    positioning: Type.String({ maxLength: 600 }),
    strengths: Strings(6, ''),
    weaknesses: Strings(6, ''),
    threatLevel: LEVEL
  }, { additionalProperties: false }), { minItems: 1, maxItems: 10 }),
  marketGaps: Strings(8, ''),
  differentiation: Strings(8, 'How the idea can stand apart'),
  positioningStatement: Type.String({ maxLength: 600 }),
  source: Estimate
}, 'A competitive landscape; verify with current market data')

function competitorsOffline (input: Static<typeof CompetitorsInput>): Static<typeof CompetitorsOutput> {
  const names =
    input.competitors.length > 0
      ? input.competitors
      : ['Established incumbent', 'Low-cost alternative', 'Status quo (spreadsheets and manual work)']
  const short = input.idea.length > 80 ? `${input.idea.slice(0, 79)}…` : input.idea
  return {
    idea: input.idea,
    competitors: names.map((name, i) => ({
      name,
      positioning: `${name} as an alternative to "${short}"`,
      strengths: [i === 0 ? 'Brand recognition and distribution' : 'Price or convenience'],
      weaknesses: ['Not built specifically for this need'],
      threatLevel: i === 0 ? ('high' as const) : ('medium' as const)
    })),
    marketGaps: [`Customers underserved by ${names[0]}`],
    differentiation: ['Focus on one narrow customer segment first', 'Faster onboarding than the incumbents'],
    positioningStatement:
      `For customers who need ${short}, unlike ${names[0]}, this focuses on their specific workflow.`,
    source: 'llm-estimate'
  }
}

export const analyzeCompetitors = defineMethod({
  name: 'analyzeCompetitors',
  summary: 'Competitors of an idea, market gaps and how to differentiate',
  input: CompetitorsInput,
  output: CompetitorsOutput,
  cacheTtl: 43200,
  rateLimit: 10,
  temperature: 0.6,
  prompt: (input) => ({
    system: SYSTEM.innovation,
    prompt: buildPrompt('Analyse the competitive landscape of this idea.', input, [
      'Include every named competitor; add the most relevant unnamed ones (including "do nothing").',
      'source is "llm-estimate".'
    ])
  }),
  offline: competitorsOffline
})

// travel.getDestinationRecommendations and travel.getVisaRequirements: where to go, and what entry
// rules probably apply (model estimates, to be checked with official sources).
import { Type, type Static } from 'typebox'
import { Choice, Estimate, Input, Money, Output, Strings, Text, TextList } from '../schema-kit.js'
import { buildPrompt, SYSTEM } from '../prompt.js'
import { roundTo, seedOf } from '../offline-kit.js'
import { defineMethod } from '../types.js'

const SEASONS = ['spring', 'summer', 'autumn', 'winter', 'any'] as const

export const RecommendationsInput = Input({
  budget: Type.Optional(Type.Number({ minimum: 0, maximum: 1_000_000, description: 'Total budget in USD' })),
  interests: TextList(10, 50, 'Interests, e.g. beaches, hiking, food', { minItems: 1 }),
  duration: Type.Integer({ minimum: 1, maximum: 90, default: 7, description: 'Days' }),
  season: Choice(SEASONS, 'When to travel', 'any'),
  travelers: Type.Integer({ minimum: 1, maximum: 20, default: 1 })
}, 'Destination recommendation request')

export const RecommendationsOutput = Output(
  {
    recommendations: Type.Array(
      Type.Object(
        {
          destination: Type.String({ maxLength: 100 }),
          country: Type.String({ maxLength: 100 }),
          why: Type.String({ maxLength: 600 }),
          bestFor: Strings(6, 'Interests it suits'),
          estimatedCost: Money,
          bestTimeToVisit: Type.String({ maxLength: 200 }),
          matchScore: Type.Integer({ minimum: 0, maximum: 100 })
        },
        { additionalProperties: false }
      ),
      { minItems: 1, maxItems: 8 }
    ),
    insights: Type.Object(
      { trending: Strings(5, ''), offSeason: Strings(5, ''), bestValue: Strings(5, '') },
      { additionalProperties: false }
    ),
    source: Estimate
  },
  'Recommended destinations; costs are estimates'
)

type RecIn = Static<typeof RecommendationsInput>

// A small built-in catalogue so offline answers are real places that fit the request.
const CATALOGUE = [
  {
    destination: 'Lisbon',
    country: 'Portugal',
    tags: ['food', 'culture', 'history', 'nightlife', 'beaches'],
    seasons: ['spring', 'autumn'],
    daily: 140
  },
  {
    destination: 'Kyoto',
    country: 'Japan',
    tags: ['culture', 'history', 'food', 'temples', 'gardens'],
    seasons: ['spring', 'autumn'],
    daily: 190
  },
  {
    destination: 'Cape Town',
    country: 'South Africa',
    tags: ['nature', 'hiking', 'beaches', 'wine', 'adventure'],
    seasons: ['summer', 'spring'],
    daily: 120
  },
  {
    destination: 'Mexico City',
    country: 'Mexico',
    tags: ['food', 'art', 'culture', 'history', 'nightlife'],
    seasons: ['spring', 'winter'],
    daily: 100
  },
  {
    destination: 'Reykjavik',
    country: 'Iceland',
    tags: ['nature', 'adventure', 'hiking', 'northern lights'],
    seasons: ['winter', 'summer'],
    daily: 260
  },
  {
    destination: 'Marrakech',
    country: 'Morocco',
    tags: ['culture', 'markets', 'food', 'history', 'desert'],
    seasons: ['spring', 'autumn', 'winter'],
    daily: 90
  },
  {
    destination: 'Bali',
    country: 'Indonesia',
    tags: ['beaches', 'wellness', 'nature', 'surfing', 'culture'],
    seasons: ['summer', 'spring'],
    daily: 80
  },
  {
    destination: 'Vienna',
    country: 'Austria',
    tags: ['music', 'art', 'history', 'culture', 'christmas markets'],
    seasons: ['winter', 'spring', 'autumn'],
    daily: 170
  },
  {
    destination: 'Queenstown',
    country: 'New Zealand',
    tags: ['adventure', 'hiking', 'nature', 'skiing'],
    seasons: ['winter', 'summer'],
    daily: 200
  },
  {
    destination: 'Istanbul',
    country: 'Turkey',
    tags: ['history', 'food', 'culture', 'markets', 'architecture'],
    seasons: ['spring', 'autumn'],
    daily: 110
  }
]

function recommendOffline (input: RecIn): Static<typeof RecommendationsOutput> {
  const wanted = input.interests.map(i => i.toLowerCase())
  const scored = CATALOGUE.map(place => {
    const matches = place.tags.filter(tag => wanted.some(w => tag.includes(w) || w.includes(tag)))
    const seasonFit = input.season === 'any' || place.seasons.includes(input.season)
    const cost = place.daily * input.duration * input.travelers
    const affordable = !input.budget || cost <= input.budget
    const score = Math.min(
      100,
      40 + matches.length * 15 + (seasonFit ? 15 : 0) + (affordable ? 10 : -20) + (seedOf(place.destination) % 5)
    )
    return { place, matches, score: Math.max(0, score), cost }
  }).sort((a, b) => b.score - a.score || a.place.destination.localeCompare(b.place.destination))
  const top = scored.slice(0, 5)
  return {
    recommendations: top.map(({ place, matches, score, cost }) => ({
      destination: place.destination,
      country: place.country,
      why: `${place.destination} suits ${matches.length > 0 ? matches.join(', ') : 'a first visit'}` +
        `${input.season !== 'any' ? ` in ${input.season}` : ''}; about ${input.duration} day(s) fit well.`,
      bestFor: place.tags.slice(0, 4),
      estimatedCost: { amount: roundTo(cost, 10), currency: 'USD' },
      bestTimeToVisit: place.seasons.join(' or '),
      matchScore: score
    })),
    insights: {
      trending: [top[0].place.destination],
      offSeason: scored
        .filter(s => input.season !== 'any' && !s.place.seasons.includes(input.season))
        .slice(0, 2)
        .map(s => s.place.destination),
      bestValue: [...scored]
        .sort((a, b) => a.place.daily - b.place.daily)
        .slice(0, 2)
        .map(s => s.place.destination)
    },
    source: 'llm-estimate'
  }
}

export const getDestinationRecommendations = defineMethod({
  name: 'getDestinationRecommendations',
  summary: 'Destinations that fit a budget, interests, trip length and season',
  input: RecommendationsInput,
  output: RecommendationsOutput,
  cacheTtl: 86400,
  rateLimit: 60,
  temperature: 0.8,
  prompt: input => ({
    system: SYSTEM.travel,
    prompt: buildPrompt('Recommend 3 to 6 travel destinations for this traveller.', input, [
      'Rank by fit (matchScore 0–100) to the interests, season and budget.',
      'estimatedCost is the USD total for all travellers for the whole trip, excluding flights; ' +
        'source is "llm-estimate".'
    ])
  }),
  offline: recommendOffline,
  streamItems: { event: 'partial', property: 'recommendations' }
})

const PURPOSES = ['tourism', 'business', 'study', 'work', 'transit'] as const

export const VisaInput = Input({
  destination: Text(2, 100, 'Destination country', { examples: ['Japan'] }),
  nationality: Text(2, 100, 'Passport nationality', { examples: ['Egyptian'] }),
  purpose: Choice(PURPOSES, 'Purpose of travel', 'tourism'),
  duration: Type.Integer({ minimum: 1, maximum: 365, default: 14, description: 'Length of stay in days' })
}, 'Visa requirement question')

export const VisaOutput = Output({
  destination: Type.String(),
  nationality: Type.String(),
  purpose: Type.String(),
  visaRequired: Type.Enum(['yes', 'no', 'visa-on-arrival', 'e-visa', 'unknown']),
  visaType: Type.String({ maxLength: 200 }),
  maxStayDays: Type.Optional(Type.Integer({ minimum: 0 })),
  processingTime: Type.String({ maxLength: 200 }),
  requiredDocuments: Strings(15, 'Documents usually asked for'),
  fees: Type.Optional(Money),
  notes: Strings(10, 'Caveats'),
  officialSources: Strings(5, 'Where to confirm (embassy, government portal)'),
  source: Estimate,
  disclaimer: Type.String({ maxLength: 300 })
}, 'Likely entry requirements; rules change, confirm with official sources')

const VISA_DISCLAIMER =
  "Entry rules change often: this is a model estimate, confirm with the destination's embassy " +
  'or official immigration portal before travelling.'

function visaOffline (input: Static<typeof VisaInput>): Static<typeof VisaOutput> {
  return {
    destination: input.destination,
    nationality: input.nationality,
    purpose: input.purpose,
    visaRequired: 'unknown',
    visaType: `${input.purpose} entry to ${input.destination}`,
    processingTime: 'Unknown offline; allow several weeks if a visa is needed',
    requiredDocuments: [
      `Passport (${input.nationality}) valid at least 6 months beyond a ${input.duration}-day stay`,
      'Return or onward ticket',
      'Proof of accommodation',
      'Proof of sufficient funds'
    ],
    notes: [
      `Offline mode cannot know the current rules for ${input.nationality} citizens visiting ${input.destination}.`
    ],
    officialSources: [
      `Embassy or consulate of ${input.destination}`,
      `${input.destination} official immigration website`
    ],
    source: 'llm-estimate',
    disclaimer: VISA_DISCLAIMER
  }
}

export const getVisaRequirements = defineMethod({
  name: 'getVisaRequirements',
  summary: 'Likely visa and entry requirements (an estimate to confirm officially)',
  input: VisaInput,
  output: VisaOutput,
  cacheTtl: 604800,
  rateLimit: 60,
  temperature: 0.1,
  prompt: input => ({
    system: SYSTEM.travel,
    prompt: buildPrompt(
      `What does a ${input.nationality} citizen need to enter ${input.destination} for ${input.purpose}?`,
      input,
      [
        'Say "unknown" for visaRequired rather than guessing when unsure.',
        'List official places to confirm; do not invent URLs.',
        `source is "llm-estimate"; set disclaimer to: "${VISA_DISCLAIMER}"`
      ]
    )
  }),
  offline: visaOffline
})

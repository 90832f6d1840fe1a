// travel.generateItinerary: a day-by-day plan with an estimated budget breakdown.
import { Type, type Static } from 'typebox'
import { Estimate, Input, Output, Strings, Text, TextList } from '../schema-kit.js'
import { buildPrompt, SYSTEM } from '../prompt.js'
import { pick, roundTo, seedOf } from '../offline-kit.js'
import { defineMethod } from '../types.js'

export const GenerateItineraryInput = Input({
  destination: Text(2, 100, 'Where the trip goes', { examples: ['Kyoto'] }),
  duration: Type.Integer({ minimum: 1, maximum: 21, description: 'Days' }),
  interests: TextList(10, 50, 'Interests, e.g. food, museums, hiking', { default: [] }),
  budget: Type.Optional(Type.Number({ minimum: 0, maximum: 1_000_000, description: 'Total budget in USD' })),
  travelers: Type.Integer({ minimum: 1, maximum: 20, default: 1 })
}, 'Itinerary request')

const Activity = Type.Object({
  time: Type.String({ maxLength: 20, description: 'e.g. 09:00 or Morning' }),
  activity: Type.String({ maxLength: 300 }),
  location: Type.String({ maxLength: 200 }),
  estimatedCostUsd: Type.Number({ minimum: 0 })
}, { additionalProperties: false })

export const GenerateItineraryOutput = Output({
  destination: Type.String(),
  duration: Type.Integer({ minimum: 1 }),
  overview: Type.String({ maxLength: 1500 }),
  days: Type.Array(Type.Object({
    day: Type.Integer({ minimum: 1 }),
    title: Type.String({ maxLength: 200 }),
    activities: Type.Array(Activity, { minItems: 1, maxItems: 8 }),
    meals: Strings(4, 'Where or what to eat')
  }, { additionalProperties: false }), { minItems: 1, maxItems: 21 }),
  budgetBreakdown: Type.Object({
    accommodation: Type.Number({ minimum: 0 }),
    food: Type.Number({ minimum: 0 }),
    activities: Type.Number({ minimum: 0 }),
    transport: Type.Number({ minimum: 0 }),
    total: Type.Number({ minimum: 0 }),
    currency: Type.String({ minLength: 3, maxLength: 3 }),
    source: Estimate
  }, { additionalProperties: false }),
  packingList: Strings(20, 'What to pack'),
  travelTips: Strings(10, 'Practical tips')
}, 'Day-by-day itinerary')

type In = Static<typeof GenerateItineraryInput>
type Out = Static<typeof GenerateItineraryOutput>

const THEMES = [
  'Old town walk',
  'Markets and local food',
  'Museums and history',
  'Parks and viewpoints',
  'Neighbourhoods off the beaten path',
  'Day trip nearby',
  'Art and architecture'
]

function offline (input: In): Out {
  const seed = seedOf(input.destination.toLowerCase())
  const interests = input.interests.length > 0 ? input.interests : ['culture', 'food']
  const days = Array.from({ length: input.duration }, (_, i) => {
    const interest = interests[i % interests.length]
    const theme = i === 0 ? 'Arrival and first impressions' : pick(THEMES, seed, i)
    return {
      day: i + 1,
      title: `Day ${i + 1} in ${input.destination}: ${theme}`,
      activities: [
        {
          time: 'Morning',
          activity: `${theme} in ${input.destination}`,
          location: `${input.destination} centre`,
          estimatedCostUsd: 0
        },
        {
          time: 'Afternoon',
          activity: `Time for ${interest}: the best-rated spots in ${input.destination}`,
          location: input.destination,
          estimatedCostUsd: 25 * input.travelers
        },
        {
          time: 'Evening',
          activity: `Dinner and an evening stroll in ${input.destination}`,
          location: `${input.destination} old quarter`,
          estimatedCostUsd: 35 * input.travelers
        }
      ],
      meals: ['Breakfast near your hotel', `Local specialities of ${input.destination} for dinner`]
    }
  })
  const perDay = input.budget ? input.budget / input.duration : 180 * input.travelers
  const part = (share: number) => roundTo(perDay * input.duration * share, 1)
  const budgetBreakdown = {
    accommodation: part(0.4),
    food: part(0.25),
    activities: part(0.2),
    transport: part(0.15),
    total: 0,
    currency: 'USD',
    source: 'llm-estimate' as const
  }
  budgetBreakdown.total = roundTo(
    budgetBreakdown.accommodation + budgetBreakdown.food + budgetBreakdown.activities + budgetBreakdown.transport,
    1
  )
  return {
    destination: input.destination,
    duration: input.duration,
    overview: `Offline plan: ${input.duration} day(s) in ${input.destination} for ${input.travelers} traveller(s), ` +
      `built around ${interests.join(', ')}.`,
    days,
    budgetBreakdown,
    packingList: ['Comfortable walking shoes', 'Travel adapter', 'Reusable water bottle', 'Copies of travel documents'],
    travelTips: [
      `Buy a public transport pass in ${input.destination} if you will ride more than twice a day.`,
      'Book popular sights online ahead of time.'
    ]
  }
}

export const generateItinerary = defineMethod({
  name: 'generateItinerary',
  summary: 'Day-by-day itinerary with activities, meals and an estimated budget',
  input: GenerateItineraryInput,
  output: GenerateItineraryOutput,
  cacheTtl: 1800,
  rateLimit: 10,
  temperature: 0.7,
  prompt: input => ({
    system: SYSTEM.travel,
    prompt: buildPrompt(`Plan a ${input.duration}-day trip to ${input.destination}.`, input, [
      'Return exactly one entry in days per trip day, numbered from 1.',
      'Tailor activities to the interests; group nearby places on the same day.',
      'Costs are USD estimates; budgetBreakdown.total is the sum of its parts ' +
        'and stays within the budget when one is given.',
      'budgetBreakdown.source is "llm-estimate".'
    ])
  }),
  offline
})

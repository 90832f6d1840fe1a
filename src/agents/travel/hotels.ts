// travel.searchHotels: hotels for a stay. With GOOGLE_MAPS_API_KEY the hotels are real places from the
// Google Places API (source 'google_places') and the model estimates their prices; without it every
// hotel is a model estimate (source 'llm-estimate'). Prices are always estimates (priceSource).
import { Type, type Static } from 'typebox'
import { Estimate, Input, IsoDate, Money, Output, Strings, Text } from '../schema-kit.js'
import { buildPrompt, SYSTEM } from '../prompt.js'
import { daysBetween, pick, roundTo, seedOf } from '../offline-kit.js'
import { defineMethod } from '../types.js'
import type { Place, PlacesClient } from './places.js'

export const SearchHotelsInput = Input({
  destination: Text(2, 100, 'City or area', { examples: ['Paris'] }),
  checkin: IsoDate('Check-in date'),
  checkout: IsoDate('Check-out date, after check-in'),
  guests: Type.Integer({ minimum: 1, maximum: 20, default: 1 }),
  rooms: Type.Integer({ minimum: 1, maximum: 10, default: 1 })
}, 'Hotel search')

const HotelSource = Type.Union([Type.Literal('google_places'), Type.Literal('llm-estimate')])

export const SearchHotelsOutput = Output({
  destination: Type.String(),
  checkin: Type.String(),
  checkout: Type.String(),
  nights: Type.Integer({ minimum: 1 }),
  hotels: Type.Array(Type.Object({
    name: Type.String({ maxLength: 200 }),
    address: Type.String({ maxLength: 300 }),
    rating: Type.Number({ minimum: 0, maximum: 5 }),
    userRatingCount: Type.Optional(Type.Integer({ minimum: 0 })),
    pricePerNight: Money,
    totalPrice: Money,
    amenities: Strings(12, 'Likely amenities'),
    highlights: Type.String({ maxLength: 500 }),
    source: HotelSource,
    priceSource: Estimate,
    placeId: Type.Optional(Type.String()),
    mapsUrl: Type.Optional(Type.String())
  }, { additionalProperties: false }), { minItems: 1, maxItems: 8 }),
  recommendations: Strings(8, 'Booking advice'),
  areaInsights: Type.String({ maxLength: 1000 }),
  source: HotelSource
}, 'Hotels: real places when Google Places is configured, else estimates; prices are always estimates')

type In = Static<typeof SearchHotelsInput>
type Out = Static<typeof SearchHotelsOutput>

/** The Google Places hotels run() put into the context for the model (and the offline builder). */
function placesOf (input: In): Place[] | undefined {
  const { context } = input
  if (typeof context !== 'object' || context === null || !('places' in context)) return undefined
  return Array.isArray(context.places) ? context.places : undefined
}

const STYLES = [
  'Grand Hotel',
  'Boutique Inn',
  'Riverside Suites',
  'Old Town Residence',
  'Central Apartments',
  'Garden Hotel'
]
const AMENITIES = [
  'Free Wi-Fi',
  'Breakfast available',
  '24-hour front desk',
  'Air conditioning',
  'Fitness room',
  'Airport shuttle',
  'Bar',
  'Family rooms'
]

function offline (input: In): Out {
  const nights = Math.max(1, daysBetween(input.checkin, input.checkout))
  const seed = seedOf(input.destination.toLowerCase())
  const places = placesOf(input)
  const names = places?.map(p => p.name) ?? STYLES.slice(0, 4).map(style => `${input.destination} ${style}`)
  const hotels = names.slice(0, 6).map((name, i) => {
    const perNight = roundTo((90 + ((seed >> i) % 180) + i * 25) * input.rooms, 5)
    const place = places?.[i]
    return {
      name,
      address:
        place?.address ??
        `${pick(['Central', 'Old Town', 'Riverside', 'Station'], seed, i)} district, ${input.destination}`,
      rating: place?.rating ?? Math.round((3.8 + ((seed >> i) % 12) / 10) * 10) / 10,
      pricePerNight: { amount: perNight, currency: 'USD' },
      totalPrice: { amount: perNight * nights, currency: 'USD' },
      amenities: [0, 1, 2, 3].map(k => pick(AMENITIES, seed, i + k * 2)).filter((a, k, all) => all.indexOf(a) === k),
      highlights:
        `${name}: a ${i % 2 ? 'quiet' : 'well-connected'} base in ${input.destination} for ${input.guests} guest(s).`,
      source: place ? ('google_places' as const) : ('llm-estimate' as const),
      priceSource: 'llm-estimate' as const
    }
  })
  return {
    destination: input.destination,
    checkin: input.checkin,
    checkout: input.checkout,
    nights,
    hotels,
    recommendations: [
      `Book refundable rates in ${input.destination} until your plans are fixed.`,
      `For ${nights} night(s), compare the total price including taxes and city fees.`
    ],
    areaInsights:
      `Offline mode: staying central in ${input.destination} keeps most sights walkable; prices are estimates.`,
    source: places ? 'google_places' : 'llm-estimate'
  }
}

export function createSearchHotels (places?: PlacesClient, onPlacesError?: (error: Error) => void) {
  return defineMethod({
    name: 'searchHotels',
    summary: 'Hotels for a stay (Google Places when configured) with estimated prices',
    input: SearchHotelsInput,
    output: SearchHotelsOutput,
    cacheTtl: 3600,
    rateLimit: 20,
    temperature: 0.4,
    refine: (input) => (daysBetween(input.checkin, input.checkout) < 1
      ? [{ field: 'input.checkout', message: 'must be after checkin' }]
      : []),
    prompt: (input) => {
      const known = placesOf(input)
      return {
        system: SYSTEM.travel,
        prompt: buildPrompt(`Find hotels in ${input.destination} from ${input.checkin} to ${input.checkout}.`, input, [
          known
            ? 'The context lists real hotels from Google Places: ' +
              'return exactly those hotels, same names and order, with source "google_places".'
            : 'Suggest 4 to 6 well-known, plausible hotels across price ranges, with source "llm-estimate".',
          'pricePerNight and totalPrice are USD estimates for all rooms; priceSource is always "llm-estimate".',
          'nights is the number of nights between checkin and checkout.'
        ])
      }
    },
    offline,
    // Without a Places client the method is a plain LLM call (no run()).
    run: !places
      ? undefined
      : async (input, ctx) => {
        let found: Place[] = []
        try {
          found = await places.searchHotels(input.destination, ctx.signal)
        } catch (error) {
          if (ctx.signal.aborted) throw error
          onPlacesError?.(error instanceof Error ? error : new Error(String(error))) // fall back to estimates
        }
        if (found.length === 0) return ctx.generate(input)
        const estimated = await ctx.generate({
          ...input,
          context: { places: found, ...(input.context !== undefined ? { previous: input.context } : {}) }
        })
        const byName = new Map(estimated.hotels.map(h => [h.name.toLowerCase(), h]))
        const hotels = found.map((place, i) => {
          const guess = byName.get(place.name.toLowerCase()) ?? estimated.hotels[i] ?? estimated.hotels[0]
          return {
            ...guess,
            name: place.name,
            address: place.address || guess.address,
            rating: place.rating ?? guess.rating,
            ...(place.userRatingCount !== undefined ? { userRatingCount: place.userRatingCount } : {}),
            placeId: place.id,
            ...(place.mapsUrl ? { mapsUrl: place.mapsUrl } : {}),
            source: 'google_places' as const,
            priceSource: 'llm-estimate' as const
          }
        })
        return { ...estimated, hotels, source: 'google_places' as const }
      }
  })
}

// travel.createCompletePackage: flights, hotels, itinerary and visa requirements, run in parallel through
// the agent service (each cached, traced and metered on its own), combined into one trip package.
import { Type } from 'typebox'
import { Estimate, Input, IsoDate, Output, Strings, Text, TextList } from '../schema-kit.js'
import { buildPrompt, SYSTEM } from '../prompt.js'
import { addDays, roundTo } from '../offline-kit.js'
import { defineMethod } from '../types.js'
import { SearchFlightsOutput } from './flights.js'
import { SearchHotelsOutput } from './hotels.js'
import { GenerateItineraryOutput } from './itinerary.js'
import { VisaOutput } from './destinations.js'

export const CompletePackageInput = Input({
  destination: Text(2, 100, 'Where the trip goes', { examples: ['Paris'] }),
  from: Text(2, 100, 'Departure city or IATA code', { examples: ['Cairo'] }),
  date: IsoDate('Departure date'),
  duration: Type.Integer({ minimum: 1, maximum: 21, description: 'Days' }),
  budget: Type.Optional(Type.Number({ minimum: 0, maximum: 1_000_000, description: 'Total budget in USD' })),
  travelers: Type.Integer({ minimum: 1, maximum: 9, default: 1 }),
  interests: TextList(10, 50, 'Interests', { default: [] }),
  nationality: Text(2, 100, 'Passport nationality of the travellers', { examples: ['Egyptian'] })
}, 'Complete trip package request')

export const CompletePackageOutput = Output({
  destination: Type.String(),
  from: Type.String(),
  date: Type.String(),
  returnDate: Type.String(),
  travelers: Type.Integer({ minimum: 1 }),
  flights: Type.Array(SearchFlightsOutput.properties.flights.items, { maxItems: 3 }),
  hotels: Type.Array(SearchHotelsOutput.properties.hotels.items, { maxItems: 3 }),
  itinerary: GenerateItineraryOutput,
  visa: VisaOutput,
  totalEstimatedCost: Type.Object({
    min: Type.Number({ minimum: 0 }),
    max: Type.Number({ minimum: 0 }),
    currency: Type.String({ minLength: 3, maxLength: 3 }),
    source: Estimate
  }, { additionalProperties: false }),
  bookingSteps: Strings(10, 'What to book, in order')
}, 'A trip package: top flights and hotels, the itinerary, entry requirements and an estimated total')

export const createCompletePackage = defineMethod({
  name: 'createCompletePackage',
  summary: 'Flights, hotels, itinerary and visa requirements in one package (four methods run in parallel)',
  input: CompletePackageInput,
  output: CompletePackageOutput,
  cacheTtl: 1800,
  rateLimit: 10,
  // Not sent to a model: run() composes the four methods. Kept so the method documents itself.
  prompt: input => ({
    system: SYSTEM.travel,
    prompt: buildPrompt(`Assemble a trip package to ${input.destination}.`, input)
  }),
  async run (input, ctx) {
    const returnDate = addDays(input.date, input.duration)
    const [flights, hotels, itinerary, visa] = await Promise.all([
      ctx.invoke(
        'travel',
        'searchFlights',
        { from: input.from, to: input.destination, date: input.date, passengers: input.travelers },
        SearchFlightsOutput
      ),
      ctx.invoke(
        'travel',
        'searchHotels',
        {
          destination: input.destination,
          checkin: input.date,
          checkout: returnDate,
          guests: input.travelers,
          rooms: Math.ceil(input.travelers / 2)
        },
        SearchHotelsOutput
      ),
      ctx.invoke(
        'travel',
        'generateItinerary',
        {
          destination: input.destination,
          duration: input.duration,
          interests: input.interests,
          travelers: input.travelers,
          ...(input.budget !== undefined ? { budget: input.budget } : {})
        },
        GenerateItineraryOutput
      ),
      ctx.invoke(
        'travel',
        'getVisaRequirements',
        {
          destination: input.destination,
          nationality: input.nationality,
          purpose: 'tourism',
          duration: input.duration
        },
        VisaOutput
      )
    ])
    const topFlights = [...flights.flights].sort((a, b) => a.price.amount - b.price.amount).slice(0, 3)
    const topHotels = [...hotels.hotels].sort((a, b) => b.rating - a.rating).slice(0, 3)
    const cheapestFlight = topFlights[0]?.price.amount ?? 0
    const cheapestHotel = Math.min(...topHotels.map(h => h.totalPrice.amount))
    const onTheGround =
      itinerary.budgetBreakdown.food + itinerary.budgetBreakdown.activities + itinerary.budgetBreakdown.transport
    const min = roundTo(
      cheapestFlight * 2 +
        (Number.isFinite(cheapestHotel) ? cheapestHotel : itinerary.budgetBreakdown.accommodation) +
        onTheGround,
      1
    )
    return {
      destination: input.destination,
      from: input.from,
      date: input.date,
      returnDate,
      travelers: input.travelers,
      flights: topFlights,
      hotels: topHotels,
      itinerary,
      visa,
      totalEstimatedCost: { min, max: roundTo(min * 1.3, 1), currency: 'USD', source: 'llm-estimate' as const },
      bookingSteps: [
        `Check entry requirements for ${input.nationality} citizens visiting ${input.destination} ` +
          `(visa: ${visa.visaRequired}).`,
        `Book the outbound flight from ${input.from} on ${input.date} and the return on ${returnDate}.`,
        `Reserve the hotel in ${input.destination} for ${input.duration} night(s) with free cancellation.`,
        'Book timed-entry sights from the itinerary.',
        'Buy travel insurance and share the itinerary with someone at home.'
      ]
    }
  }
})

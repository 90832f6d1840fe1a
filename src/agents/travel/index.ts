// The travel agent (flash model): flights, hotels, itineraries, destinations, visas and complete packages.
import { defineAgent, type AgentDefinition } from '../types.js'
import { searchFlights } from './flights.js'
import { createSearchHotels } from './hotels.js'
import { generateItinerary } from './itinerary.js'
import { getDestinationRecommendations, getVisaRequirements } from './destinations.js'
import { createCompletePackage } from './package.js'
import type { PlacesClient } from './places.js'

export function createTravelAgent (
  options: { places?: PlacesClient; onPlacesError?: (error: Error) => void } = {}
): AgentDefinition {
  const methods = [
    searchFlights,
    createSearchHotels(options.places, options.onPlacesError),
    generateItinerary,
    getDestinationRecommendations,
    getVisaRequirements,
    createCompletePackage
  ]
  return defineAgent({
    name: 'travel',
    description:
      'Travel planning: flight and hotel options, itineraries, destination ideas, ' +
      'visa requirements and complete packages',
    defaultModel: 'flash',
    rateLimit: 60,
    capabilities: [
      'flight-search',
      'hotel-search',
      'itinerary-planning',
      'destination-recommendations',
      'visa-requirements',
      'trip-packages',
      ...(options.places ? ['google-places'] : [])
    ],
    methods
  })
}

// Google Places API (New) text search, used by travel.searchHotels when GOOGLE_MAPS_API_KEY is set:
// POST {base}/v1/places:searchText with a field mask, lodging only. Names, addresses and ratings come
// from Places (facts); prices stay model estimates.
export interface Place {
  id: string
  name: string
  address: string
  rating?: number
  userRatingCount?: number
  priceLevel?: string
  mapsUrl?: string
}

export interface PlacesClient {
  searchHotels(destination: string, signal?: AbortSignal): Promise<Place[]>
}

export interface PlacesOptions {
  apiKey: string
  baseUrl: string
  timeoutMs?: number
  /** Keeps at most this many lodging results. */
  limit?: number
}

const FIELD_MASK = [
  'places.id', 'places.displayName', 'places.formattedAddress', 'places.rating', 'places.userRatingCount',
  'places.priceLevel', 'places.types', 'places.googleMapsUri'
].join(',')

interface RawPlace {
  id?: string
  displayName?: { text?: string }
  formattedAddress?: string
  rating?: number
  userRatingCount?: number
  priceLevel?: string
  types?: string[]
  googleMapsUri?: string
}

export function createPlacesClient (options: PlacesOptions): PlacesClient {
  const url = `${options.baseUrl.replace(/\/+$/, '')}/v1/places:searchText`
  return {
    async searchHotels (destination, signal) {
      const timeout = AbortSignal.timeout(options.timeoutMs ?? 15_000)
      const res = await fetch(url, {
        method: 'POST',
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
        headers: {
          'content-type': 'application/json',
          'x-goog-api-key': options.apiKey,
          'x-goog-fieldmask': FIELD_MASK
        },
        body: JSON.stringify({ textQuery: `hotels in ${destination}`, includedType: 'lodging', maxResultCount: 10 })
      })
      if (!res.ok) throw new Error(`Places API answered HTTP ${res.status}`)
      const body = await res.json() as { places?: RawPlace[] }
      return (body.places ?? [])
        .filter((p): p is RawPlace & { displayName: { text: string } } =>
          Boolean(p.displayName?.text) && (!p.types || p.types.some(t => t === 'lodging' || t === 'hotel')))
        .slice(0, options.limit ?? 6)
        .map(p => ({
          id: p.id ?? '',
          name: p.displayName.text,
          address: p.formattedAddress ?? '',
          ...(typeof p.rating === 'number' ? { rating: p.rating } : {}),
          ...(typeof p.userRatingCount === 'number' ? { userRatingCount: p.userRatingCount } : {}),
          ...(p.priceLevel ? { priceLevel: p.priceLevel } : {}),
          ...(p.googleMapsUri ? { mapsUrl: p.googleMapsUri } : {})
        }))
    }
  }
}

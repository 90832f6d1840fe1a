// Hotels from the Google Places API (New) when GOOGLE_MAPS_API_KEY is set, against a local server speaking
// that API: names, addresses and ratings are facts (source google_places), prices stay estimates; a Places
// failure falls back to estimates; without a key no Places request is made.
import t from 'tap'
import { Value } from 'typebox/value'
import { startGeminiServer } from '../fixtures/gemini-server.js'
import { startPlacesServer } from '../fixtures/places-server.js'
import { buildApp, definitions, invoke, modelAnswer } from './support.js'

const STAY = { destination: 'Paris', checkin: '2030-04-01', checkout: '2030-04-04', guests: 2 }

t.test('with a key: real places (lodging only), model-estimated prices', async t => {
  const places = await startPlacesServer()
  const gemini = await startGeminiServer(modelAnswer)
  t.teardown(() => places.close())
  t.teardown(() => gemini.close())
  const app = await buildApp(t, {
    env: {
      GOOGLE_MAPS_API_KEY: 'maps-key',
      GOOGLE_PLACES_BASE_URL: places.url,
      GEMINI_API_KEY: 'k',
      GEMINI_BASE_URL: gemini.url
    }
  })
  const res = await invoke(app, 'travel', 'searchHotels', STAY)
  t.equal(res.statusCode, 200)
  const data = res.json().data
  t.ok(Value.Check(definitions.travel.methods.searchHotels.output, data))
  t.equal(data.source, 'google_places')
  t.same(data.hotels.map((h: { name: string }) => h.name), ['Ritz Paris', 'Generator Paris'], 'the café is not lodging')
  t.match(data.hotels[0], {
    address: '15 Pl. Vendôme, 75001 Paris, France',
    rating: 4.7,
    userRatingCount: 2890,
    placeId: 'ChIJ-ritz',
    mapsUrl: 'https://maps.google.com/?cid=1',
    source: 'google_places',
    priceSource: 'llm-estimate'
  })
  t.equal(data.nights, 3)

  const [request] = places.requests
  t.equal(request.headers['x-goog-api-key'], 'maps-key')
  t.match(request.headers['x-goog-fieldmask'], /places\.displayName/)
  t.same(request.body, { textQuery: 'hotels in Paris', includedType: 'lodging', maxResultCount: 10 })
  t.match(gemini.requests[0].prompt, /Ritz Paris/, 'the model is asked to price exactly these hotels')
  t.match(gemini.requests[0].prompt, /google_places/)
})

t.test('offline provider with a key: places are used and the estimates follow them', async t => {
  const places = await startPlacesServer()
  t.teardown(() => places.close())
  const app = await buildApp(t, { env: { GOOGLE_MAPS_API_KEY: 'maps-key', GOOGLE_PLACES_BASE_URL: places.url } })
  const data = (await invoke(app, 'travel', 'searchHotels', STAY)).json().data
  t.same(data.hotels.map((h: { name: string }) => h.name), ['Ritz Paris', 'Generator Paris'])
  t.equal(places.requests.length, 1)
})

t.test('a Places failure falls back to estimates (the call still succeeds)', async t => {
  const places = await startPlacesServer()
  t.teardown(() => places.close())
  places.failWith = 403
  const logs: string[] = []
  const app = await buildApp(t, { logs, env: { GOOGLE_MAPS_API_KEY: 'maps-key', GOOGLE_PLACES_BASE_URL: places.url } })
  const res = await invoke(app, 'travel', 'searchHotels', STAY)
  t.equal(res.statusCode, 200)
  t.equal(res.json().data.source, 'llm-estimate')
  t.ok(res.json().data.hotels.every((h: { source: string }) => h.source === 'llm-estimate'))
  t.ok(logs.some(line => line.includes('Google Places search failed')))
  t.notOk(logs.some(line => line.includes('maps-key')), 'the key is never logged')
})

t.test('without a key: no Places request, every hotel is an estimate', async t => {
  const places = await startPlacesServer()
  t.teardown(() => places.close())
  const app = await buildApp(t, { env: { GOOGLE_PLACES_BASE_URL: places.url } })
  const data = (await invoke(app, 'travel', 'searchHotels', STAY)).json().data
  t.equal(data.source, 'llm-estimate')
  t.equal(places.requests.length, 0)
  t.notOk(app.agents.definitions.travel.capabilities.includes('google-places'))
})

// Cache-clear patterns: the Express service's forms (`travel:*`, `agent:travel:flight_search:*`) are
// translated to this service's `<method>:<hash>` keys; a pattern naming another agent, the old RedisCache
// or no method of the agent is refused with a hint naming the accepted form — never a silent 0.
import t from 'tap'
import { LEGACY_OPERATIONS, cachePattern, type PatternContext } from '../../src/cache/legacy-pattern.js'
import { AGENT_NAMES, createAgentDefinitions } from '../../src/agents/index.js'

const travel: PatternContext = {
  agent: 'travel',
  methods: [
    'searchFlights',
    'searchHotels',
    'generateItinerary',
    'getDestinationRecommendations',
    'getVisaRequirements',
    'createCompletePackage'
  ],
  agents: ['travel', 'content', 'innovation']
}

t.test('this service\'s globs pass unchanged', async t => {
  for (const pattern of ['*', 'searchFlights*', 'search*', 'searchFlights:*', '[gs]*', '*content*']) {
    t.same(cachePattern(pattern, travel), { ok: true, pattern }, pattern)
  }
  t.same(cachePattern(undefined, travel), { ok: true, pattern: '*' }, 'no pattern clears the agent')
})

t.test('the Express service\'s patterns are translated', async t => {
  const cases: Array<[string, string]> = [
    ['travel:*', '*'],
    ['agent:travel:*', '*'],
    ['travel:flight_search:*', 'searchFlights:*'],
    ['agent:travel:hotel_search:*', 'searchHotels:*'],
    ['flight_search:*', 'searchFlights:*']
  ]
  for (const [old, now] of cases) {
    t.same(cachePattern(old, travel), { ok: true, pattern: now, translatedFrom: old }, old)
  }
})

t.test('patterns that cannot mean a key of this agent are refused with a hint', async t => {
  const refused = (pattern: string) => {
    const outcome = cachePattern(pattern, travel)
    return outcome.ok ? '' : outcome.message
  }
  t.match(refused('content:*'), 'names agent content: use POST /api/agents/content/cache/clear')
  t.match(refused('amrikyy:flight:*'), 'RedisCache')
  t.match(
    refused('flights*'),
    'matches no cached response of agent travel: keys are <method>:<input hash> and the methods are searchFlights'
  )
  t.match(refused('travel'), 'e.g. "*" or "searchFlights*"')
})

t.test('the operation table names real methods of each agent', async t => {
  const definitions = createAgentDefinitions()
  t.same(Object.keys(LEGACY_OPERATIONS), [...AGENT_NAMES])
  t.same(
    [...travel.methods].sort(),
    Object.keys(definitions.travel.methods).sort(),
    "the fixture lists travel's methods"
  )
  for (const agent of AGENT_NAMES) {
    const methods = Object.keys(definitions[agent].methods)
    const operations = LEGACY_OPERATIONS[agent]
    for (const method of Object.values(operations)) t.ok(methods.includes(method), `${agent}.${method}`)
  }
})

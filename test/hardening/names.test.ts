// Issue 11: names a client sends (agents, methods, workflows, aggregators) are looked up among own
// entries only, so `__proto__`, `constructor`, `toString`… are unknown names like any other: 404 listing
// the available ones on every agent route family, and the coordinator's usual 400 listing them. They
// used to answer 500 (status, metrics, traces, stats reset, cache warm) or 200 (health of "__proto__",
// metrics of "constructor" reported as agent "Object").
import t from 'tap'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { createAgentDefinitions, findAgent, findMethod, offlineBuilder } from '../../src/agents/index.js'
import { isAggregatorName } from '../../src/coordinator/aggregators.js'
import { createCatalog } from '../../src/coordinator/catalog.js'
import { prepareWorkflow } from '../../src/coordinator/workflows.js'
import { build } from '../support.js'
import { ADMIN_KEY, MANAGEMENT_ENV } from '../routes/support.js'

const PROTOTYPE_NAMES = [
  '__proto__',
  'constructor',
  'toString',
  'hasOwnProperty',
  'valueOf',
  'isPrototypeOf',
  '__defineGetter__',
  'propertyIsEnumerable'
]
const UNKNOWN = 'nosuchname'
const FLIGHT = { from: 'Cairo', to: 'Paris', date: '2030-06-01', passengers: 1 }

function call (
  app: FastifyInstance,
  method: 'GET' | 'POST',
  url: string,
  payload?: object
): Promise<LightMyRequestResponse> {
  return app.inject({ method, url, headers: { 'x-api-key': ADMIN_KEY }, ...(payload ? { payload } : {}) })
}

/** The reply with the name replaced by a placeholder and the request id dropped, to compare with an unknown name's. */
function shape (reply: LightMyRequestResponse, name: string): unknown {
  const { requestId: _id, ...body } = reply.json()
  return { statusCode: reply.statusCode, body: JSON.parse(JSON.stringify(body).split(name).join('<name>')) }
}

const agentRoutes: Array<[string, 'GET' | 'POST', (name: string) => string, object?]> = [
  ['status', 'GET', n => `/api/agents/${n}/status`],
  ['health', 'GET', n => `/api/agents/${n}/health`],
  ['metrics', 'GET', n => `/api/agents/${n}/metrics`],
  ['traces', 'GET', n => `/api/agents/${n}/traces?limit=5`],
  ['cache clear', 'POST', n => `/api/agents/${n}/cache/clear`, { pattern: '*' }],
  [
    'cache warm',
    'POST',
    n => `/api/agents/${n}/cache/warm`,
    { requests: [{ method: 'searchFlights', input: FLIGHT }] }
  ],
  ['stats reset', 'POST', n => `/api/agents/${n}/stats/reset`],
  ['invoke', 'POST', n => `/api/agents/${n}/searchFlights`, FLIGHT],
  ['stream stats', 'GET', n => `/api/stream/stats/${n}`]
]

t.test('agent names: 404 listing the agents on every route family, exactly as for an unknown name', async t => {
  const app = await build(t, { env: MANAGEMENT_ENV })
  for (const [family, method, url, payload] of agentRoutes) {
    const unknown = await call(app, method, url(UNKNOWN), payload)
    t.equal(unknown.statusCode, 404, `${family}: an unknown agent is 404`)
    t.match(
      JSON.stringify(unknown.json().details),
      /"travel","content","innovation"/,
      `${family}: the agents are listed`
    )
    for (const name of PROTOTYPE_NAMES) {
      const reply = await call(app, method, url(name), payload)
      t.same(shape(reply, name), shape(unknown, UNKNOWN), `${family} of "${name}"`)
    }
  }
  const overview = (await call(app, 'GET', '/api/agents/overview')).json()
  t.same(
    overview.agents.map((a: { agent: string }) => a.agent),
    ['travel', 'content', 'innovation'],
    'no statistics entry was created for a prototype name'
  )
})

t.test('method names: 404 listing the methods, on invoke and in cache warm', async t => {
  const app = await build(t, { env: MANAGEMENT_ENV })
  const unknownInvoke = await call(app, 'POST', `/api/agents/travel/${UNKNOWN}`, {})
  const unknownWarm = await call(app, 'POST', '/api/agents/travel/cache/warm', {
    requests: [{ method: UNKNOWN, input: {} }]
  })
  t.equal(unknownInvoke.statusCode, 404)
  t.match(unknownWarm.json().results[0], {
    status: 'failed',
    error: { statusCode: 404, details: { availableMethods: ['searchFlights'] } }
  })
  for (const name of PROTOTYPE_NAMES) {
    t.same(
      shape(await call(app, 'POST', `/api/agents/travel/${name}`, {}), name),
      shape(unknownInvoke, UNKNOWN),
      `invoke travel.${name}`
    )
    const warm = await call(app, 'POST', '/api/agents/travel/cache/warm', { requests: [{ method: name, input: {} }] })
    t.same(shape(warm, name), shape(unknownWarm, UNKNOWN), `warm travel.${name}`)
  }
})

t.test(
  'coordinator: prototype-named workflows, step agents, step methods and aggregators are unknown names',
  async t => {
    const app = await build(t, { env: MANAGEMENT_ENV })
    const bodies: Array<[string, (name: string) => object]> = [
      ['workflow', name => ({ workflowName: name, input: {} })],
      ['sequential', name => ({ steps: [{ agent: name, method: 'searchFlights', input: FLIGHT }] })],
      ['parallel', name => ({ tasks: [{ agent: 'travel', method: name, input: FLIGHT }] })],
      [
        'hierarchical',
        name => ({
          master: { agent: name, method: 'searchFlights', input: FLIGHT },
          subAgents: [{ agent: 'content', method: name }]
        })
      ],
      [
        'hierarchical',
        name => ({
          master: { agent: 'travel', method: 'searchFlights', input: FLIGHT },
          subAgents: [{ agent: 'travel', method: 'searchFlights', input: FLIGHT }],
          aggregator: name
        })
      ]
    ]
    for (const [strategy, body] of bodies) {
      const unknown = await call(app, 'POST', `/api/coordinator/${strategy}`, body(UNKNOWN))
      t.equal(unknown.statusCode, 400, `${strategy}: an unknown name is refused`)
      t.match(unknown.body, /travel|trip-package|collect/, `${strategy}: the valid names are listed`)
      for (const name of PROTOTYPE_NAMES) {
        t.same(
          shape(await call(app, 'POST', `/api/coordinator/${strategy}`, body(name)), name),
          shape(unknown, UNKNOWN),
          `${strategy} with "${name}"`
        )
      }
    }
    t.equal((await call(app, 'GET', '/api/coordinator/stats')).json().total, 0, 'nothing ran')
  }
)

t.test('the lookups themselves: own entries only', async t => {
  const definitions = createAgentDefinitions()
  const catalog = createCatalog(definitions)
  const build = offlineBuilder(definitions)
  for (const name of PROTOTYPE_NAMES) {
    t.equal(findAgent(definitions, name), undefined, `agent ${name}`)
    t.equal(findMethod(definitions.travel, name), undefined, `method ${name}`)
    t.equal(catalog.validate(name, 'searchFlights', {}), null)
    t.equal(catalog.validate('travel', name, {}), null)
    t.equal(build({ agent: name, method: 'searchFlights', input: FLIGHT }), undefined)
    t.equal(build({ agent: 'travel', method: name, input: FLIGHT }), undefined)
    t.notOk(isAggregatorName(name))
    t.throws(() => prepareWorkflow(name, {}), { code: 'AMK_VALIDATION' })
  }
  t.equal(findAgent(definitions, 'travel'), definitions.travel)
  t.equal(findMethod(definitions.travel, 'searchFlights'), definitions.travel.methods.searchFlights)
})

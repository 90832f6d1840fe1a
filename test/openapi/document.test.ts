// /openapi.json: a valid OpenAPI 3.1 document in which every operation has an operationId, tags, a
// summary, response schemas and each error status; every JSON body and response is a named component;
// public routes say `security: []`; shared components keep their $id names and every $ref resolves.
import t from 'tap'
import { Validator } from '@seriousme/openapi-schema-validator'
import { build, freePort, redisPrefix } from '../support.js'

interface Operation {
  operationId?: string
  security?: Array<Record<string, string[]>>
  requestBody?: { content?: Record<string, { schema?: unknown }> }
  parameters?: Array<{ name: string, in: string, schema?: { pattern?: string } }>
  tags?: string[]
  summary?: string
  responses?: Record<string, { description?: string, content?: Record<string, { schema?: unknown }> }>
}
type OpenApi = {
  openapi: string
  info: { title: string, version: string, license?: { name: string } }
  paths: Record<string, Record<string, Operation>>
  components: { schemas: Record<string, unknown>, securitySchemes: Record<string, unknown> }
  tags: Array<{ name: string }>
}

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options']

function refsIn (value: unknown, found: string[] = []): string[] {
  if (Array.isArray(value)) for (const item of value) refsIn(item, found)
  else if (value && typeof value === 'object') {
    for (const [key, inner] of Object.entries(value)) {
      if (key === '$ref' && typeof inner === 'string') found.push(inner)
      else refsIn(inner, found)
    }
  }
  return found
}

t.test('/openapi.json is a valid OpenAPI 3.1 document', async t => {
  const app = await build(t)
  const res = await app.inject('/openapi.json')
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^application\/json/)
  const doc = res.json() as OpenApi
  t.equal(doc.openapi, '3.1.0')
  t.equal(doc.info.title, 'Amrikyy Agent API')

  const validator = new Validator()
  const result = await validator.validate(doc as unknown as Record<string, unknown>)
  t.ok(result.valid, `valid: ${JSON.stringify(result.errors, null, 1)?.slice(0, 2000)}`)
  t.equal(validator.version, '3.1')
})

t.test('every operation has operationId, tags, summary and response schemas', async t => {
  const app = await build(t)
  const doc = (await app.inject('/openapi.json')).json() as OpenApi
  const declaredTags = new Set(doc.tags.map(tag => tag.name))
  const operationIds = new Set<string>()
  let operations = 0
  for (const [path, item] of Object.entries(doc.paths)) {
    t.notOk(path.startsWith('/docs'), `Swagger UI routes are hidden (${path})`)
    for (const [method, operation] of Object.entries(item).filter(([m]) => METHODS.includes(m))) {
      const where = `${method.toUpperCase()} ${path}`
      operations++
      t.ok(operation.operationId, `${where} has an operationId`)
      t.notOk(operationIds.has(operation.operationId!), `${where}: operationId ${operation.operationId} is unique`)
      operationIds.add(operation.operationId!)
      t.ok(operation.tags?.length, `${where} has tags`)
      for (const tag of operation.tags ?? []) t.ok(declaredTags.has(tag), `${where}: tag ${tag} is declared`)
      t.ok(operation.summary, `${where} has a summary`)
      const responses = operation.responses ?? {}
      const success = Object.keys(responses).filter(code => /^2\d\d$/.test(code))
      t.ok(success.length > 0, `${where} documents a success response`)
      for (const code of success.filter(c => c !== '204')) {
        const content = Object.values(responses[code].content ?? {})
        t.ok(content.length > 0 && content.every(media => media.schema), `${where} ${code} has a response schema`)
      }
      // Explicit statuses, not 4XX/5XX ranges (Swagger UI lists ranges as "Undocumented").
      t.notOk(Object.keys(responses).some(code => /^[45]xx$/i.test(code)), `${where} lists error statuses one by one`)
      const secured = (operation.security ?? []).length > 0
      for (const code of ['400', '404', '429', '500', '503', ...(secured ? ['401', '403'] : [])]) {
        const error = responses[code]
        t.ok(error?.description, `${where} documents ${code}`)
        const schema = JSON.stringify(error?.content?.['application/json']?.schema)
        t.ok(
          ['ErrorResponse', 'HealthReportUnavailable', 'ProbeFailure', 'AgentHealthUnavailable'].some(
            name => schema === JSON.stringify({ $ref: `#/components/schemas/${name}` })
          ),
          `${where} ${code} has the error shape (${schema})`
        )
      }
    }
  }
  t.ok(operations >= 8, `${operations} operations`)
  for (const id of [
    'getServiceInfo',
    'getServiceStatus',
    'getHealth',
    'getLiveness',
    'getReadiness',
    'getMetrics',
    'getMetricsJson',
    'resetMetrics'
  ]) {
    t.ok(operationIds.has(id), `${id} is documented`)
  }
})

t.test('shared components appear under their $id names and every $ref resolves', async t => {
  const app = await build(t)
  const doc = (await app.inject('/openapi.json')).json() as OpenApi
  const names = Object.keys(doc.components.schemas)
  for (const name of [
    'ErrorResponse',
    'HealthStatus',
    'ComponentHealth',
    'HealthReport',
    'ProbeResult',
    'ServiceInfo',
    'ServiceStatus'
  ]) {
    t.ok(names.includes(name), `components.schemas.${name}`)
  }
  t.same(names.filter(name => /^def-\d+$/.test(name)), [], 'no generated def-N names')
  const error = doc.components.schemas.ErrorResponse as { required: string[], properties: Record<string, unknown> }
  t.same([...error.required].sort(), ['code', 'error', 'message', 'requestId', 'statusCode'])
  const refs = refsIn(doc)
  t.ok(refs.length > 0)
  for (const ref of new Set(refs)) {
    const match = /^#\/components\/schemas\/(.+)$/.exec(ref)
    t.ok(match && names.includes(match[1]), `${ref} resolves`)
  }
  t.ok(doc.components.securitySchemes.bearerAuth)
  t.ok(doc.components.securitySchemes.apiKey)
})

const operationsOf = (doc: OpenApi) =>
  Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([m]) => METHODS.includes(m))
      .map(([method, operation]) => ({ where: `${method.toUpperCase()} ${path}`, path, operation }))
  )

t.test('every JSON request body and response is a named component', async t => {
  const app = await build(t)
  const doc = (await app.inject('/openapi.json')).json() as OpenApi
  for (const { where, operation } of operationsOf(doc)) {
    const body = operation.requestBody?.content?.['application/json']
    if (body) t.match(body.schema, { $ref: /^#\/components\/schemas\/\w+$/ }, `${where} request body`)
    for (const [code, response] of Object.entries(operation.responses ?? {})) {
      const media = response.content?.['application/json']
      if (media) t.match(media.schema, { $ref: /^#\/components\/schemas\/\w+$/ }, `${where} ${code}`)
    }
  }
  t.ok(doc.components.schemas.TravelSearchFlightsResponse, 'the invoke envelope of each method is named')
  t.ok(doc.components.schemas.LoginRequest, 'request bodies are named')
})

t.test('public routes declare security: []; the others offer bearer and API key as alternatives', async t => {
  const app = await build(t)
  const doc = (await app.inject('/openapi.json')).json() as OpenApi
  const byId = new Map(operationsOf(doc).map(o => [o.operation.operationId, o.operation]))
  for (const id of ['getServiceInfo', 'getServiceStatus', 'getHealth', 'getLiveness', 'getReadiness', 'login']) {
    t.same(byId.get(id)?.security, [], `${id} is public`)
  }
  t.same(
    byId.get('travel_searchFlights')?.security,
    [{ bearerAuth: [] }, { apiKey: [] }],
    'two requirements: one or the other'
  )
  t.equal(doc.info.license?.name, 'MIT')
})

t.test('health 503 bodies are their own components and keep the error fields', async t => {
  const app = await build(t)
  const doc = (await app.inject('/openapi.json')).json() as OpenApi
  const byId = new Map(operationsOf(doc).map(o => [o.operation.operationId, o.operation]))
  const ref = (id: string) => byId.get(id)?.responses?.['503']?.content?.['application/json']?.schema
  t.same(ref('getHealth'), { $ref: '#/components/schemas/HealthReportUnavailable' })
  t.same(ref('getReadiness'), { $ref: '#/components/schemas/ProbeFailure' })
  for (const name of ['HealthReportUnavailable', 'ProbeFailure']) {
    const required = (doc.components.schemas[name] as { required: string[] }).required
    for (const field of ['statusCode', 'code', 'error', 'message', 'requestId']) { t.ok(required.includes(field), `${name} requires ${field}`) }
  }
})

t.test('health 503 bodies carry the error fields at run time', async t => {
  const app = await build(t, {
    env: { REDIS_URL: `redis://127.0.0.1:${await freePort()}`, REDIS_KEY_PREFIX: redisPrefix(), REDIS_REQUIRED: 'true' }
  })
  for (const url of ['/api/health', '/api/health/ready']) {
    const res = await app.inject(url)
    t.equal(res.statusCode, 503, url)
    t.match(
      res.json(),
      {
        statusCode: 503,
        code: 'AMK_SERVICE_UNAVAILABLE',
        error: 'Service Unavailable',
        message: String,
        requestId: res.headers['x-request-id']
      },
      `${url}: error fields`
    )
    t.match(res.json(), { status: url === '/api/health' ? 'unhealthy' : 'not_ready' }, `${url}: and the report`)
  }
})

t.test('/api/stream/{streamId}/… cannot match /api/stream/stats/{agent}', async t => {
  const app = await build(t)
  const doc = (await app.inject('/openapi.json')).json() as OpenApi
  for (const path of ['/api/stream/{streamId}/events', '/api/stream/{streamId}/cancel']) {
    const method = path.endsWith('events') ? 'get' : 'post'
    const pattern = doc.paths[path][method].parameters?.find(p => p.name === 'streamId')?.schema?.pattern ?? ''
    t.notOk(new RegExp(pattern).test('stats'), `${path}: streamId ${pattern} excludes "stats"`)
    t.ok(new RegExp(pattern).test('st_0123456789abcdef01234567'), 'and matches a real stream id')
  }
})

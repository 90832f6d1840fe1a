// /openapi.json: a valid OpenAPI 3.1 document in which every operation has an operationId, tags, a
// summary and response schemas; shared components keep their $id names and every $ref resolves.
import t from 'tap'
import { Validator } from '@seriousme/openapi-schema-validator'
import { build } from './helper.js'

interface Operation {
  operationId?: string
  tags?: string[]
  summary?: string
  responses?: Record<string, { description?: string, content?: Record<string, { schema?: unknown }> }>
}
type OpenApi = {
  openapi: string
  info: { title: string, version: string }
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
      for (const code of ['4XX', '5XX']) {
        const error = responses[code] ?? responses[code.toLowerCase()]
        t.ok(error, `${where} documents ${code}`)
        t.match(JSON.stringify(error), '#/components/schemas/ErrorResponse', `${where} ${code} is the ErrorResponse`)
      }
    }
  }
  t.ok(operations >= 8, `${operations} operations`)
  for (const id of ['getServiceInfo', 'getServiceStatus', 'getHealth', 'getLiveness', 'getReadiness', 'getMetrics', 'getMetricsJson', 'resetMetrics']) {
    t.ok(operationIds.has(id), `${id} is documented`)
  }
})

t.test('shared components appear under their $id names and every $ref resolves', async t => {
  const app = await build(t)
  const doc = (await app.inject('/openapi.json')).json() as OpenApi
  const names = Object.keys(doc.components.schemas)
  for (const name of ['ErrorResponse', 'HealthStatus', 'ComponentHealth', 'HealthReport', 'ProbeResult', 'ServiceInfo', 'ServiceStatus']) {
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

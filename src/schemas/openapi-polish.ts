// Final touches to the generated OpenAPI document, for generators and linters: every JSON body and
// response is a named component, every operation lists its error statuses one by one (Swagger UI shows
// "4XX"/"5XX" ranges as undocumented, and generators type them loosely), and public routes say
// `security: []`. Runs as @fastify/swagger's `transform` (per route) and `transformObject` (whole document).
import type { SwaggerTransform, SwaggerTransformObject } from '@fastify/swagger'

type Json = Record<string, unknown>
interface MediaType { schema?: Json }
interface Response { description?: string, content?: Record<string, MediaType> }
interface Operation {
  operationId?: string
  security?: Array<Record<string, string[]>>
  requestBody?: { content?: Record<string, MediaType> }
  responses?: Record<string, Response>
}

const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value)
const isOperation = (value: unknown): value is Operation => isObject(value)

/** Statuses every operation can answer with the error shape, and what each means here. */
const ERROR_STATUSES: Record<string, string> = {
  400: 'The request is invalid (`details` lists each field)',
  401: 'Missing, unknown, expired or revoked credentials',
  403: 'The caller lacks the permission the route needs (named in the message)',
  404: 'Unknown route, agent, method, stream or run',
  429: 'A rate limit, stream cap or budget was reached (`Retry-After` says when to retry)',
  500: 'Unexpected failure (message masked in every environment; the cause is logged)',
  503: 'A dependency is unavailable or the replica is shutting down (`Retry-After` says when to retry)'
}
/** Only operations that need credentials answer 401 and 403. */
const AUTH_STATUSES = new Set(['401', '403'])

const errorResponse = (description: string): Response => ({
  description,
  content: { 'application/json': { schema: { $ref: '#/components/schemas/ErrorResponse' } } }
})

const pascal = (operationId: string) => operationId
  .split(/[^A-Za-z0-9]+/).filter(Boolean)
  .map(part => part[0].toUpperCase() + part.slice(1)).join('')

/** @fastify/swagger `transform`: routes marked `config.public` declare that they need no credentials. */
export const publicSecurity: SwaggerTransform = ({ schema, url, route }) => {
  const config: unknown = route.config
  if (!schema || schema.hide || !isObject(config) || config.public !== true || 'security' in schema) {
    return { schema, url }
  }
  return { schema: { ...schema, security: [] }, url }
}

/** Moves an inline JSON schema into components.schemas under `name`; returns the $ref. */
function hoist (components: Record<string, unknown>, name: string, media: MediaType) {
  if (!media.schema || '$ref' in media.schema) return
  let unique = name
  for (let i = 2; unique in components; i++) unique = `${name}${i}`
  components[unique] = media.schema
  media.schema = { $ref: `#/components/schemas/${unique}` }
}

/**
 * Inline schemas marked `x-component` (named enums such as CabinClass) become components, referenced where
 * they stood; the description and default stay at the reference. Generators then name the type after the
 * component, not after the property (`export enum class` is not TypeScript).
 */
function hoistNamed (node: unknown, components: Json): void {
  if (Array.isArray(node)) {
    for (const item of node) hoistNamed(item, components)
    return
  }
  if (!isObject(node)) return
  for (const [key, value] of Object.entries(node)) {
    if (!isObject(value) || typeof value['x-component'] !== 'string') {
      hoistNamed(value, components)
      continue
    }
    const { 'x-component': name, description, default: fallback, ...schema } = value
    components[name] ??= schema
    node[key] = {
      $ref: `#/components/schemas/${name}`,
      ...(description !== undefined ? { description } : {}),
      ...(fallback !== undefined ? { default: fallback } : {})
    }
  }
}

function polishOperation (operation: Operation, components: Record<string, unknown>) {
  const name = pascal(operation.operationId ?? '')
  const responses = operation.responses ?? {}
  for (const range of ['4XX', '5XX', '4xx', '5xx']) delete responses[range]
  const secured = (operation.security ?? []).length > 0
  for (const [status, description] of Object.entries(ERROR_STATUSES)) {
    if (!secured && AUTH_STATUSES.has(status)) continue
    responses[status] ??= errorResponse(description)
  }
  operation.responses = responses
  if (name === '') return
  const body = operation.requestBody?.content?.['application/json']
  if (body) hoist(components, `${name}Request`, body)
  for (const [status, response] of Object.entries(responses)) {
    const media = response.content?.['application/json']
    if (media) {
      hoist(components, status === '200' || status === '201' ? `${name}Response` : `${name}Response${status}`, media)
    }
  }
}

/** @fastify/swagger `transformObject`: explicit error statuses and named components for every operation. */
export const polishDocument: SwaggerTransformObject = (documentObject) => {
  if (!('openapiObject' in documentObject)) return documentObject.swaggerObject
  const { openapiObject } = documentObject
  const paths: unknown = openapiObject.paths
  const components: Json = isObject(openapiObject.components) ? openapiObject.components : {}
  const schemas = isObject(components.schemas) ? components.schemas : {}
  for (const item of isObject(paths) ? Object.values(paths) : []) {
    if (!isObject(item)) continue
    for (const method of ['get', 'put', 'post', 'delete', 'patch']) {
      const operation = item[method]
      if (isOperation(operation)) polishOperation(operation, schemas)
    }
  }
  hoistNamed(paths, schemas)
  for (const schema of Object.values(schemas)) hoistNamed(schema, schemas)
  components.schemas = schemas
  return openapiObject
}

// The operations of the served OpenAPI document (/openapi.json), as the fuzzer needs them: method, path
// template, parameters, JSON body schema, whether it streams, and the statuses it documents itself.

export const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const
export type Method = typeof METHODS[number]
const isMethod = (name: string): name is Method => METHODS.some(method => method === name)

export interface JsonSchema {
  type?: string | string[]
  properties?: Record<string, JsonSchema>
  required?: string[]
  items?: JsonSchema
  additionalProperties?: boolean | JsonSchema
  enum?: unknown[]
  const?: unknown
  anyOf?: JsonSchema[]
  oneOf?: JsonSchema[]
  allOf?: JsonSchema[]
  $ref?: string
  minLength?: number
  maxLength?: number
  minimum?: number
  maximum?: number
  minItems?: number
  maxItems?: number
  format?: string
  pattern?: string
  examples?: unknown[]
}

export interface Parameter {
  name: string
  in: 'path' | 'query' | 'header' | 'cookie'
  required?: boolean
  schema?: JsonSchema
}

export interface Operation {
  id: string
  method: Method
  /** The OpenAPI path template, e.g. /api/agents/{agent}/health */
  path: string
  parameters: Parameter[]
  body?: JsonSchema
  /** Declares text/event-stream (streams: a 200 is closed as soon as it starts). */
  streams: boolean
  /** Statuses the operation documents with its own body (e.g. 503 of a health probe), not 4XX/5XX. */
  declared: string[]
}

export interface OpenApiDocument {
  paths: Record<string, Record<string, {
    operationId?: string
    parameters?: Parameter[]
    requestBody?: { content?: Record<string, { schema?: JsonSchema }> }
    responses?: Record<string, { content?: Record<string, unknown> }>
  }>>
  components?: { schemas?: Record<string, JsonSchema> }
}

export function operationsOf (doc: OpenApiDocument): Operation[] {
  const operations: Operation[] = []
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [name, op] of Object.entries(item)) {
      const method = name.toUpperCase()
      if (!isMethod(method)) continue
      const streams =
        Object.values(op.responses ?? {}).some(r => Object.keys(r.content ?? {}).includes('text/event-stream')) ||
        (op.parameters ?? []).some(p => p.in === 'header' && p.name === 'accept')
      operations.push({
        id: op.operationId ?? `${method} ${path}`,
        method,
        path,
        parameters: op.parameters ?? [],
        body: op.requestBody?.content?.['application/json']?.schema,
        streams,
        declared: Object.keys(op.responses ?? {}).filter(status => /^\d+$/.test(status))
      })
    }
  }
  return operations
}

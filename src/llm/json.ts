// JSON helpers shared by the providers: parsing model text (tolerating a ```json fence) and turning a
// TypeBox schema into the subset of JSON Schema that Gemini's responseJsonSchema accepts.

/** Parses model output as JSON; undefined when it is not JSON. */
export function parseModelJson (text: string): unknown {
  let body = text.trim()
  const fence = /^```(?:json)?\s*([\s\S]*?)\s*```$/i.exec(body)
  if (fence) body = fence[1]
  try {
    return JSON.parse(body)
  } catch {
    return undefined
  }
}

// Keywords Gemini documents for responseJsonSchema; the rest (maxLength, pattern, default…) is dropped
// so a strict server does not reject the request. Validation of the full schema happens on our side.
const KEPT = new Set([
  'type',
  'format',
  'title',
  'description',
  'enum',
  'items',
  'prefixItems',
  'minItems',
  'maxItems',
  'minimum',
  'maximum',
  'anyOf',
  'oneOf',
  'properties',
  'additionalProperties',
  'required',
  '$ref',
  '$defs',
  'propertyOrdering'
])

/** A plain-JSON copy of a schema restricted to the keywords Gemini understands (const becomes enum). */
export function toProviderSchema (schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(toProviderSchema)
  if (!schema || typeof schema !== 'object') return schema
  const out: Record<string, unknown> = {}
  const entries: Array<[string, unknown]> = Object.entries(schema)
  for (const [key, value] of entries) {
    if (key === 'const') {
      out.enum = [value]
    } else if (key === 'properties' || key === '$defs') {
      out[key] = Object.fromEntries(
        Object.entries(typeof value === 'object' && value !== null ? value : {}).map(([k, v]) => [
          k,
          toProviderSchema(v)
        ])
      )
    } else if (KEPT.has(key)) {
      out[key] = typeof value === 'object' && key !== 'required' && key !== 'enum' ? toProviderSchema(value) : value
    }
  }
  // Gemini wants a type next to enum.
  if (Array.isArray(out.enum) && out.type === undefined && out.enum.every(v => typeof v === 'string')) {
    out.type = 'string'
  }
  return out
}

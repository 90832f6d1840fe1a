// Builds a schema-valid value from a JSON schema, deterministically, using a hint (the request's main
// subject) for strings. The offline provider falls back to it when a method has no builder or its
// builder's output does not validate; it never produces lorem ipsum, only labelled placeholders.
type Schema = Record<string, unknown>

const isSchema = (value: unknown): value is Schema =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

function humanize (name: string): string {
  return name.replace(/([a-z])([A-Z])/g, '$1 $2').replace(/[_-]+/g, ' ').toLowerCase()
}

function fitString (text: string, schema: Schema): string {
  const min = typeof schema.minLength === 'number' ? schema.minLength : 0
  const max = typeof schema.maxLength === 'number' ? schema.maxLength : 500
  let value = text
  while (value.length < min) value += ` ${text}`
  return value.slice(0, Math.max(min, Math.min(max, value.length)))
}

function sampleString (schema: Schema, name: string, hint: string): string {
  switch (schema.format) {
    case 'date': return '2030-01-01'
    case 'date-time': return '2030-01-01T00:00:00.000Z'
    case 'uri': return 'https://example.com/'
    case 'email': return 'someone@example.com'
  }
  return fitString(hint ? `${humanize(name)} for ${hint}` : humanize(name) || 'value', schema)
}

function sampleNumber (schema: Schema, integer: boolean): number {
  const min =
    typeof schema.minimum === 'number'
      ? schema.minimum
      : typeof schema.exclusiveMinimum === 'number'
        ? schema.exclusiveMinimum + 1
        : 0
  const max = typeof schema.maximum === 'number' ? schema.maximum : Number.MAX_SAFE_INTEGER
  const value = Math.min(Math.max(min, 1), max)
  return integer ? Math.ceil(value) : value
}

/**
 * A value that validates against `schema` (for the schemas agents declare: objects, arrays, strings,
 * numbers, unions).
 */
export function sampleFromSchema (schema: unknown, hint = '', name = ''): unknown {
  const s: Schema = isSchema(schema) ? schema : {}
  if ('const' in s) return s.const
  if (Array.isArray(s.enum)) return s.enum[0]
  if (Array.isArray(s.anyOf) || Array.isArray(s.oneOf)) {
    const branches: unknown[] = Array.isArray(s.anyOf) ? s.anyOf : Array.isArray(s.oneOf) ? s.oneOf : []
    const branch = branches.find(b => !isSchema(b) || b.type !== 'null') ?? branches[0]
    return sampleFromSchema(branch, hint, name)
  }
  if ('default' in s) return structuredClone(s.default)
  const type = Array.isArray(s.type) ? s.type.find(t => t !== 'null') : s.type
  switch (type) {
    case 'object': {
      const out: Record<string, unknown> = {}
      const properties = isSchema(s.properties) ? s.properties : {}
      for (const [key, child] of Object.entries(properties)) out[key] = sampleFromSchema(child, hint, key)
      return out
    }
    case 'array': {
      const min = typeof s.minItems === 'number' ? s.minItems : 1
      const max = typeof s.maxItems === 'number' ? s.maxItems : 3
      const count = Math.min(Math.max(min, 1), max)
      const items = Array.from({ length: count }, (_, i) => sampleFromSchema(s.items, hint, `${name} ${i + 1}`))
      return s.uniqueItems ? [...new Set(items.map(item => JSON.stringify(item)))].map(item => JSON.parse(item)) : items
    }
    case 'string': return sampleString(s, name, hint)
    case 'integer': return sampleNumber(s, true)
    case 'number': return sampleNumber(s, false)
    case 'boolean': return false
    case 'null': return null
    default: return hint || null
  }
}

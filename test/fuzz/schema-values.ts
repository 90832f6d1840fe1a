// Values generated from the JSON schemas of the served OpenAPI document: a valid value (so requests reach
// the handlers, with real agent, method and workflow names) and a mutation of it (one field made hostile,
// dropped, or an unknown or prototype-named key added — at the top, or deep inside, where free-form objects
// such as a workflow's `input` carry it past the schema to the handlers and the database).
import { hostileValue, NASTY_STRINGS, PROTO_NAMES, Raw, record, type FuzzValue, type Rng } from './random.js'
import type { JsonSchema, OpenApiDocument } from './openapi.js'

/** Plausible workflow input: fields most agent methods take. */
const WORKFLOW_INPUT: Array<[string, FuzzValue]> = [
  ['destination', 'Paris'],
  ['topic', 'Travel tips'],
  ['duration', 3],
  ['industry', 'travel'],
  ['idea', 'A trip planner'],
  ['from', 'London'],
  ['to', 'Rome'],
  ['date', '2027-05-01'],
  ['budget', 'medium']
]

export class SchemaValues {
  /** Real names for fields the schemas leave as free strings, so requests get past the lookups. */
  readonly hints: Record<string, string[]>
  /** Every agent method, with its input schema: a workflow step gets a real pair and a matching input. */
  private readonly methods: Array<{ agent: string, method: string, input?: JsonSchema }>
  /** Predefined workflows (GET /api/coordinator/workflows) and their input schemas, when known. */
  workflows: Array<{ name: string, inputSchema?: JsonSchema }> = []

  constructor (private readonly doc: OpenApiDocument, private readonly rng: Rng) {
    const invoke = Object.keys(doc.paths)
      .map(path => /^\/api\/agents\/(\w+)\/(\w+)$/.exec(path))
      .filter(match => match !== null)
    this.hints = { agent: [...new Set(invoke.map(match => match[1]))], method: invoke.map(match => match[2]) }
    this.methods = invoke.map(([path, agent, method]) => ({
      agent,
      method,
      input: doc.paths[path].post?.requestBody?.content?.['application/json']?.schema
    }))
  }

  resolve (schema: JsonSchema | undefined, depth = 0): JsonSchema {
    let current = schema ?? {}
    while (current.$ref && depth++ < 20) {
      const name = current.$ref.split('/').pop() ?? ''
      current = this.doc.components?.schemas?.[name] ?? {}
    }
    if (current.allOf) {
      const merged: JsonSchema = { type: 'object', properties: {}, required: [] }
      for (const part of current.allOf.map(s => this.resolve(s, depth + 1))) {
        Object.assign(merged.properties ?? {}, part.properties)
        merged.required?.push(...(part.required ?? []))
      }
      return merged
    }
    return current
  }

  /** A value that should pass the schema (best effort: patterns are matched by plain letters). */
  valid (input: JsonSchema | undefined, depth = 0, name = ''): FuzzValue {
    const schema = this.resolve(input)
    const rng = this.rng
    if (this.hints[name] && !schema.enum && rng.chance(0.9)) return rng.pick(this.hints[name])
    if (name === 'input' && !schema.properties && rng.chance(0.8)) {
      return record(
        WORKFLOW_INPUT.filter(() => rng.chance(0.6)).concat(
          rng.chance(0.2) ? [['context', record([['$ref', 'steps.0.data']])]] : []
        )
      )
    }
    if (schema.const !== undefined) return plain(schema.const)
    if (schema.enum) return plain(rng.pick(schema.enum))
    const branches = schema.anyOf ?? schema.oneOf
    if (branches) return this.valid(rng.pick(branches), depth + 1)
    if (schema.examples?.length && rng.chance(0.5)) return plain(rng.pick(schema.examples))
    const type = Array.isArray(schema.type) ? rng.pick(schema.type) : schema.type
    switch (type) {
      case 'string': return this.string(schema)
      case 'integer':
      case 'number': {
        const min = schema.minimum ?? 0
        const max = Math.min(schema.maximum ?? min + 10, min + 1000)
        return rng.int(Math.ceil(min), Math.floor(max))
      }
      case 'boolean': return rng.chance(0.5)
      case 'null': return null
      case 'array': {
        if (depth > 4) return []
        const min = schema.minItems ?? 0
        const length = rng.int(min, Math.max(min, Math.min(schema.maxItems ?? 3, 3)))
        return Array.from({ length }, () => this.valid(schema.items, depth + 1))
      }
      case 'object':
      case undefined: {
        if (!schema.properties) { return type === 'object' ? record([]) : rng.pick([null, 'text', 1, record([['note', 'context']])]) }
        if (depth > 4) return record([])
        const required = new Set(schema.required ?? [])
        const entries = Object.entries(schema.properties)
          .filter(([name]) => required.has(name) || rng.chance(0.5))
          .map(([key, inner]): [string, FuzzValue] => [key, this.valid(inner, depth + 1, key)])
        const value = record(entries)
        if (schema.properties.agent && schema.properties.method && rng.chance(0.85)) {
          const step = rng.pick(this.methods)
          Object.assign(value, { agent: step.agent, method: step.method })
          if (schema.properties.input) value.input = this.valid(step.input, depth + 1)
        }
        if (schema.properties.workflowName && this.workflows.length > 0 && rng.chance(0.85)) {
          const workflow = rng.pick(this.workflows)
          Object.assign(value, { workflowName: workflow.name, input: this.valid(workflow.inputSchema, depth + 1) })
        }
        return value
      }
      default: return null
    }
  }

  private string (schema: JsonSchema): string {
    const rng = this.rng
    switch (schema.format) {
      case 'date': return `2027-0${rng.int(1, 9)}-1${rng.int(0, 9)}`
      case 'date-time': return `2027-01-0${rng.int(1, 9)}T10:00:00Z`
      case 'email': return `user${rng.int(1, 999)}@example.com`
      case 'uuid': return '3f2b8c1e-4d5a-4b6c-8d7e-9f0a1b2c3d4e'
      case 'uri': return 'https://example.com/x'
    }
    const min = schema.minLength ?? 1
    const max = Math.max(min, Math.min(schema.maxLength ?? 24, 24))
    const letters = 'abcdefghijklmnopqrstuvwxyz'
    return Array.from({ length: rng.int(min, max) }, () => rng.pick([...letters])).join('')
  }

  /** The valid value with one hostile change: a field replaced, dropped, or an unknown/prototype key added. */
  mutated (input: JsonSchema | undefined): FuzzValue {
    const rng = this.rng
    const value = this.valid(input)
    if (value === null || typeof value !== 'object' || Array.isArray(value) || value instanceof Raw) { return hostileValue(rng) }
    const keys = Object.keys(value)
    const action = rng.int(0, 7)
    if (action >= 6) {
      this.deepMutation(value)
      return value
    }
    if (action <= 2 && keys.length > 0) value[rng.pick(keys)] = hostileValue(rng)
    else if (action === 3 && keys.length > 0) delete value[rng.pick(keys)]
    else if (action === 4) value[rng.pick(PROTO_NAMES)] = hostileValue(rng)
    else value[rng.pick(['unknownField', 'context', 'input', '$ref'])] = hostileValue(rng)
    return value
  }

  /**
   * A hostile change below the top, where free-form objects (a workflow's `input`, a step's `input`, `context`)
   * carry it past the schema: one string anywhere in the body gets control characters, an unpaired surrogate
   * or other hostile text appended (so its length and the rest of the body stay valid), or a nested object gets
   * a hostile key.
   */
  private deepMutation (value: { [key: string]: FuzzValue }): void {
    const rng = this.rng
    const strings: Array<{ parent: { [key: string]: FuzzValue } | FuzzValue[], key: string | number }> = []
    const objects: Array<{ [key: string]: FuzzValue }> = [value]
    const walk = (node: FuzzValue, depth: number) => {
      if (depth > 8 || node === null || typeof node !== 'object' || node instanceof Raw) return
      const entries: Array<[string | number, FuzzValue]> =
        Array.isArray(node) ? [...node.entries()] : Object.entries(node)
      if (!Array.isArray(node) && node !== value) objects.push(node)
      for (const [key, child] of entries) {
        if (typeof child === 'string') strings.push({ parent: node, key })
        else walk(child, depth + 1)
      }
    }
    walk(value, 0)
    const taint = rng.pick(['\u0000', '\ud800', '\udfff', '\u0001\u001b[0m', '\u007f', '\u202e', '\ufeff', '%00', '\\'])
    if (strings.length > 0 && rng.chance(0.8)) {
      const { parent, key } = rng.pick(strings)
      const current = Array.isArray(parent) ? parent[Number(key)] : parent[String(key)]
      const tainted = rng.chance(0.5) ? `${String(current)}${taint}` : `${taint}${String(current)}`
      if (Array.isArray(parent)) parent[Number(key)] = tainted
      else parent[String(key)] = tainted
      return
    }
    rng.pick(objects)[rng.pick([...PROTO_NAMES, `k${taint}`, 'a'.repeat(300)])] = rng.chance(0.5)
      ? rng.pick(NASTY_STRINGS)
      : hostileValue(rng)
  }
}

/** A JSON value from a schema (enum, const, examples) as a FuzzValue, objects null-prototyped. */
function plain (value: unknown): FuzzValue {
  if (value === null || typeof value === 'boolean' || typeof value === 'number' || typeof value === 'string') { return value }
  if (Array.isArray(value)) return value.map(plain)
  if (typeof value === 'object') { return record(Object.entries(value).map(([k, v]): [string, FuzzValue] => [k, plain(v)])) }
  return null
}

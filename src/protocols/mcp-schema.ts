// JSON Schemas as MCP tools publish them: self-contained objects. Our TypeBox schemas point at shared
// components with `{ "$ref": "<$id>" }` (ref() in src/schemas/common.ts), which only resolve against the
// app's schema registry; an MCP client compiles each tool's schema on its own, so every reference is
// inlined and no `$id` is left (two tools carrying the same `$id` would clash in a client's Ajv).
import type { TSchema } from 'typebox'
import { isRecord } from '../agents/unknown-values.js'
import { componentSchemas } from '../schemas/index.js'

/** A tool's input or output schema: MCP requires `type: "object"` at the top. */
export interface ObjectSchema { type: 'object', [keyword: string]: unknown }

const byId = new Map<string, unknown>(componentSchemas.map(schema => [String(schema.$id), schema]))

function inline (node: unknown, trail: readonly string[]): unknown {
  if (Array.isArray(node)) return node.map(item => inline(item, trail))
  if (!isRecord(node)) return node
  const out: Record<string, unknown> = {}
  const reference = node.$ref
  if (typeof reference === 'string') {
    const target = byId.get(reference)
    if (target === undefined) throw new Error(`MCP schema: $ref ${reference} names no registered component`)
    if (trail.includes(reference)) throw new Error(`MCP schema: $ref ${reference} is recursive`)
    Object.assign(out, inline(target, [...trail, reference]))
  }
  // Keywords beside a reference (a description, a default) win over the component's own.
  for (const [key, value] of Object.entries(node)) {
    if (key !== '$ref' && key !== '$id') out[key] = inline(value, trail)
  }
  return out
}

/** A copy of an object schema with every component reference inlined and every `$id` dropped. */
export function selfContained (schema: TSchema): ObjectSchema {
  const copy = inline(JSON.parse(JSON.stringify(schema)), [])
  if (!isRecord(copy) || copy.type !== 'object') throw new Error('MCP tool schemas must be of type object')
  return { ...copy, type: 'object' }
}

/** True when the schema still holds a `$ref` or `$id` keyword anywhere (a check for tests). */
export function hasReferences (node: unknown): boolean {
  if (Array.isArray(node)) return node.some(hasReferences)
  if (!isRecord(node)) return false
  return '$ref' in node || '$id' in node || Object.values(node).some(hasReferences)
}

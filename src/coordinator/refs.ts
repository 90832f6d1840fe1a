// Data references in step inputs: `{ "$ref": "input.destination" }`, `{ "$ref": "steps.0.data.days" }`,
// `{ "$ref": "previous.data" }`. A reference is a dotted path into `{ input, steps, previous }`, looked up
// with own-property checks only — never evaluated, never reaching a prototype. Templates are copied,
// not mutated, and `__proto__` keys are refused.
import type { FieldProblem } from './types.js'

export type RefRoot = 'input' | 'steps' | 'previous'
export interface ParsedRef { root: RefRoot, segments: string[], text: string }

const ROOTS: readonly RefRoot[] = ['input', 'steps', 'previous']
const FORBIDDEN = new Set(['__proto__', 'constructor', 'prototype'])
const SEGMENT = /^[A-Za-z0-9_-]{1,64}$/
export const MAX_TEMPLATE_DEPTH = 32
const MAX_REF_LENGTH = 256

/** Thrown when a reference cannot be parsed or resolved; `field` locates it in the template. */
export class RefProblem extends Error {
  constructor (readonly field: string, message: string) { super(message) }
}

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

/** `{ "$ref": "…" }` with nothing else is a reference; any other object is data. */
export function isRef (value: unknown): value is { $ref: string } {
  if (!isPlainObject(value) || !Object.hasOwn(value, '$ref')) return false
  return Object.keys(value).length === 1 && typeof value.$ref === 'string'
}

export function parseRef (text: string, field: string): ParsedRef {
  if (text.length > MAX_REF_LENGTH) throw new RefProblem(field, `reference is longer than ${MAX_REF_LENGTH} characters`)
  const [root, ...segments] = text.split('.')
  if (!(ROOTS as readonly string[]).includes(root)) {
    throw new RefProblem(field, `reference "${text}" must start with ${ROOTS.join(', ')} (data paths only)`)
  }
  for (const segment of segments) {
    if (FORBIDDEN.has(segment)) {
      throw new RefProblem(field, `reference "${text}" uses the forbidden segment "${segment}"`)
    }
    if (!SEGMENT.test(segment)) {
      throw new RefProblem(
        field,
        `reference "${text}" has an invalid segment "${segment}" (letters, digits, _ and - only)`
      )
    }
  }
  return { root: root as RefRoot, segments, text }
}

/**
 * Every reference in a template, with its location; refuses `__proto__` keys, malformed `$ref` objects and
 * deep nesting.
 */
export function collectRefs (template: unknown, field: string, depth = 0): Array<{ ref: ParsedRef, field: string }> {
  if (depth > MAX_TEMPLATE_DEPTH) throw new RefProblem(field, `is nested deeper than ${MAX_TEMPLATE_DEPTH} levels`)
  if (isRef(template)) return [{ ref: parseRef(template.$ref, field), field }]
  if (Array.isArray(template)) return template.flatMap((item, i) => collectRefs(item, `${field}.${i}`, depth + 1))
  if (!isPlainObject(template)) return []
  if (Object.hasOwn(template, '$ref')) {
    throw new RefProblem(
      `${field}.$ref`,
      'a reference object holds exactly one key, "$ref", whose value is a path string'
    )
  }
  return Object.keys(template).flatMap(key => {
    if (key === '__proto__') throw new RefProblem(`${field}.${key}`, 'is not allowed')
    return collectRefs(template[key], `${field}.${key}`, depth + 1)
  })
}

/** Follows `segments` from `value` through own properties and array indexes only; undefined when absent. */
export function lookup (value: unknown, segments: string[]): unknown {
  let current = value
  for (const segment of segments) {
    if (FORBIDDEN.has(segment)) return undefined
    if (Array.isArray(current)) {
      if (!/^\d+$/.test(segment) || Number(segment) >= current.length) return undefined
      current = current[Number(segment)]
    } else if (isPlainObject(current) && Object.hasOwn(current, segment)) {
      current = current[segment]
    } else {
      return undefined
    }
  }
  return current
}

/** Resolves one parsed reference to its data (undefined when it names nothing). */
export type RefResolver = (ref: ParsedRef, field: string) => unknown

/** A deep copy of the template with every reference replaced by a copy of the data it names. */
export function resolveTemplate (template: unknown, resolve: RefResolver, field: string): unknown {
  if (isRef(template)) {
    const ref = parseRef(template.$ref, field)
    const value = resolve(ref, field)
    if (value === undefined) throw new RefProblem(field, `reference "${ref.text}" names no data`)
    return structuredClone(value)
  }
  if (Array.isArray(template)) return template.map((item, i) => resolveTemplate(item, resolve, `${field}.${i}`))
  if (!isPlainObject(template)) return template
  const copy: Record<string, unknown> = {}
  for (const key of Object.keys(template)) {
    if (key === '__proto__') throw new RefProblem(`${field}.${key}`, 'is not allowed')
    Object.defineProperty(copy, key, {
      value: resolveTemplate(template[key], resolve, `${field}.${key}`),
      enumerable: true,
      writable: true,
      configurable: true
    })
  }
  return copy
}

export function problemOf (error: unknown): FieldProblem | null {
  return error instanceof RefProblem ? { field: error.field, message: error.message } : null
}

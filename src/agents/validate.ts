// Validation of method inputs (defaults applied, unknown fields rejected, per-field details) and of
// model outputs (extra fields dropped, then checked) with TypeBox's compiled validators.
import type { TSchema } from 'typebox'
import { Compile, type Validator } from 'typebox/compile'
import { Value } from 'typebox/value'
import { ValidationError, withDetails } from '../errors.js'
import type { FieldProblem, ValidInput } from './types.js'

export type { FieldProblem }

const compiled = new WeakMap<TSchema, Validator>()

/** A compiled validator per schema object (compiling is slow, checking is fast). */
export function validator (schema: TSchema): Validator {
  let check = compiled.get(schema)
  if (!check) {
    check = Compile(schema)
    compiled.set(schema, check)
  }
  return check
}

/** Per-field problems, one per field, at most `limit`. */
export function problemsOf (schema: TSchema, value: unknown, root: string, limit = 20): FieldProblem[] {
  const byField = new Map<string, FieldProblem>()
  for (const error of validator(schema).Errors(value)) {
    const path = error.instancePath.split('/').filter(Boolean).map(p => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    const params = error.params as { requiredProperties?: string[], additionalProperties?: string[] }
    if (error.keyword === 'required' && params.requiredProperties) {
      for (const name of params.requiredProperties) add([root, ...path, name].join('.'), 'is required')
    } else if (error.keyword === 'additionalProperties' && params.additionalProperties) {
      for (const name of params.additionalProperties) add([root, ...path, name].join('.'), 'is not allowed')
    } else if (error.keyword !== 'boolean') {
      add([root, ...path].join('.'), error.message)
    }
    if (byField.size >= limit) break
  }
  function add (field: string, message: string) {
    if (!byField.has(field)) byField.set(field, { field, message })
  }
  return [...byField.values()]
}

const isRecord = (value: unknown): value is ValidInput =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

const invalid = (problems: FieldProblem[]) =>
  withDetails(new ValidationError(problems.map(p => `${p.field} ${p.message}`).join('; ')), problems)

/** A copy of the input with defaults applied; throws 400 AMK_VALIDATION listing every bad field. */
export function validateInput (
  schema: TSchema,
  input: unknown,
  refine?: (input: ValidInput) => FieldProblem[]
): ValidInput {
  const value: unknown = Value.Default(schema, structuredClone(input ?? {}))
  if (!validator(schema).Check(value) || !isRecord(value)) throw invalid(problemsOf(schema, value, 'input'))
  const problems = refine?.(value) ?? []
  if (problems.length > 0) throw invalid(problems)
  return value
}

export type OutputCheck = { ok: true, value: unknown } | { ok: false, problems: FieldProblem[] }

/** Checks; when that fails, drops fields the schema does not declare and checks again. `undefined` is "no JSON". */
export function checkOutput (schema: TSchema, value: unknown): OutputCheck {
  if (value === undefined) return { ok: false, problems: [{ field: 'output', message: 'is not valid JSON' }] }
  if (validator(schema).Check(value)) return { ok: true, value }
  const cleaned = Value.Clean(schema, structuredClone(value))
  if (validator(schema).Check(cleaned)) return { ok: true, value: cleaned }
  return { ok: false, problems: problemsOf(schema, cleaned, 'output', 10) }
}

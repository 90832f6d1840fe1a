// Reading fields of values typed `unknown` (caught errors, parsed JSON) without casts: each helper checks
// what it returns.

/** An own or inherited property of an object value; undefined for anything else. */
export function fieldOf (value: unknown, name: string): unknown {
  return typeof value === 'object' && value !== null ? Reflect.get(value, name) : undefined
}

/** A string property of an object value, else undefined. */
export function stringFieldOf (value: unknown, name: string): string | undefined {
  const field = fieldOf(value, name)
  return typeof field === 'string' ? field : undefined
}

/** A plain JSON object (not null, not an array). */
export function isRecord (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

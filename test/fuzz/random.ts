// Seeded randomness and the catalogue of hostile values the fuzzer plants in requests. A value is either
// plain JSON or Raw JSON text (deep nesting, huge arrays: built as text so building them costs nothing
// and no JavaScript recursion is involved); objects are null-prototype so `__proto__` is an own key.

export interface Rng {
  /** A float in [0, 1). */
  next(): number
  int(min: number, max: number): number
  pick<T>(items: readonly T[]): T
  chance(probability: number): boolean
}

/** mulberry32: small, fast and reproducible from a 32-bit seed. */
export function createRng (seed: number): Rng {
  let state = seed >>> 0
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  return {
    next,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    pick: items => items[Math.floor(next() * items.length)],
    chance: probability => next() < probability
  }
}

/** JSON text inserted verbatim by toJson(). */
export class Raw {
  constructor (readonly text: string) {}
}

export type FuzzValue = null | boolean | number | string | Raw | FuzzValue[] | { [key: string]: FuzzValue }

/** An object whose keys may be `__proto__` or `constructor` without touching any prototype. */
export function record (entries: Array<[string, FuzzValue]>): { [key: string]: FuzzValue } {
  const target: { [key: string]: FuzzValue } = Object.create(null)
  for (const [key, value] of entries) target[key] = value
  return target
}

/** Serialises a FuzzValue iteratively enough for our sizes (Raw nodes carry the deep parts). */
export function toJson (value: FuzzValue): string {
  if (value instanceof Raw) return value.text
  if (Array.isArray(value)) return `[${value.map(toJson).join(',')}]`
  if (value !== null && typeof value === 'object') {
    return `{${Object.keys(value).map(key => `${JSON.stringify(key)}:${toJson(value[key])}`).join(',')}}`
  }
  return JSON.stringify(value)
}

export const PROTO_NAMES = [
  '__proto__',
  'constructor',
  'prototype',
  'hasOwnProperty',
  'toString',
  'valueOf',
  '__defineGetter__',
  'isPrototypeOf'
] as const

export const NASTY_STRINGS: readonly string[] = [
  '',
  ' ',
  '\u0000',
  'a\u0000b',
  '\u0001\u0002\u001b[31m\u007f',
  '\r\n\r\nX-Injected: 1',
  '\t\v\f',
  '𝕳𝖊𝖑𝖑𝖔 🌍👩‍👩‍👧',
  '\u202egnp.exe',
  '\u200b\u200c\u200d\ufeff',
  'ﷺ'.repeat(50),
  'e\u0301'.repeat(200),
  '\ud800',
  '\udfff\ud800',
  '%00',
  '%',
  '../../etc/passwd',
  '$' + '{7*7}{{7*7}}',
  '<script>alert(1)</script>',
  "' OR 1=1 --",
  '*',
  '[',
  '(a+)+$',
  'a'.repeat(257),
  '__proto__',
  'constructor',
  'NaN',
  '-0',
  '1e309',
  'null',
  'true',
  '{"$ref":"#"}',
  '\\',
  '"',
  '*a'.repeat(40) + 'b',
  '['.repeat(100),
  '?'.repeat(200) + '*'.repeat(200),
  'a]b[c',
  '[z-a]'
]

/** One hostile value: wrong types, nulls, huge, deep, unicode, control characters, prototype names. */
export function hostileValue (rng: Rng): FuzzValue {
  switch (rng.int(0, 13)) {
    case 0:
      return null
    case 1:
      return rng.pick([true, false, 0, -1, 1.5, 1e308, -1e308, 2 ** 53 + 2, -(2 ** 31)])
    case 2:
      return rng.pick(NASTY_STRINGS)
    case 3:
      return 'x'.repeat(rng.pick([1000, 10_000, 100_000]))
    case 4:
      return []
    case 5:
      return record([])
    case 6:
      return deepArray(rng.pick([64, 500, 5000, 20_000]))
    case 7:
      return deepObject(rng.pick([64, 500, 5000]))
    case 8:
      return wrongTypeArray(rng.pick([10, 1000, 20_000]))
    case 9:
      return record([[rng.pick(PROTO_NAMES), record([['polluted', true]])]])
    case 10:
      return rng.pick(PROTO_NAMES)
    case 11:
      return record([
        ['$ref', rng.pick(['#', 'steps.0.data', 'input.__proto__', 'constructor.prototype', '__proto__.polluted'])]
      ])
    case 12:
      return new Raw(
        rng.pick(['1e999', '-1e999', '123456789012345678901234567890', '0.0000000000000000000000001', '-0'])
      )
    default:
      return Array.from({ length: rng.int(1, 5) }, () => rng.pick(NASTY_STRINGS))
  }
}

export const deepArray = (depth: number): Raw => new Raw(`${'['.repeat(depth)}${']'.repeat(depth)}`)
export const deepObject = (depth: number): Raw => new Raw(`${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`)

/** An array of values of every wrong type (the shape of the amplification body). */
export function wrongTypeArray (length: number): Raw {
  const cycle = ['1', 'true', 'null', '{}', '[]', '"x"', '1.5']
  return new Raw(`[${Array.from({ length }, (_, i) => cycle[i % cycle.length]).join(',')}]`)
}

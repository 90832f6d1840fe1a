// Small deterministic helpers for the offline builders: stable choices seeded by the input, text
// shaping and date arithmetic. No randomness and no clock, so equal inputs give equal outputs.
export function seedOf (text: string): number {
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193) >>> 0
  }
  // 31 bits, so builders' `seed >> i` (a signed 32-bit shift) never turns negative.
  return hash >>> 1
}

export function pick<T> (list: readonly T[], seed: number, offset = 0): T {
  return list[(seed + offset) % list.length]
}

export function titleCase (text: string): string {
  return text.replace(/\S+/g, word => word[0].toUpperCase() + word.slice(1))
}

export function slugify (text: string): string {
  return text.toLowerCase().normalize('NFKD').replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 80) || 'post'
}

export function clip (text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1).trimEnd()}…`
}

export function addDays (isoDate: string, days: number): string {
  const date = new Date(`${isoDate}T00:00:00Z`)
  date.setUTCDate(date.getUTCDate() + days)
  return date.toISOString().slice(0, 10)
}

export function daysBetween (from: string, to: string): number {
  return Math.round((Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / 86_400_000)
}

export function roundTo (value: number, step: number): number {
  return Math.round(value / step) * step
}

/** A three-letter code for a place: an IATA code as given, else the first letters. */
export function placeCode (place: string): string {
  const trimmed = place.trim()
  if (/^[A-Za-z]{3}$/.test(trimmed)) return trimmed.toUpperCase()
  return trimmed.replace(/[^A-Za-z]/g, '').slice(0, 3).toUpperCase().padEnd(3, 'X')
}

export function words (text: string): number {
  return text.split(/\s+/).filter(Boolean).length
}

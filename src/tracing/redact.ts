// Redaction of personal data and credentials from anything a trace carries (inputs, outputs, errors,
// metadata) before it leaves the process. Built on langsmith's createAnonymizer (walks every string in
// a JSON value) plus its curated DEFAULT_SECRET_RULES; the rules below add what this API handles:
// emails, phone numbers, card numbers (Luhn-checked, so order ids and dates survive), our amk_ keys,
// sk-/AIza keys and long hex/base64 secrets, and values stored under credential-like key names.
import { createAnonymizer, DEFAULT_SECRET_RULES } from 'langsmith/anonymizer'

export const PLACEHOLDER = {
  email: '[EMAIL]',
  phone: '[PHONE]',
  card: '[CARD]',
  apiKey: '[API_KEY]',
  secret: '[SECRET]'
} as const

const EMAIL = /[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/g
// 13–19 digits, optionally grouped by spaces or dashes.
const CARD = /\b\d(?:[ -]?\d){12,18}\b/g
// International (+…), parenthesised area code, or North-American 3-3-4; 9–15 digits in all, so
// ISO dates (8 digits) and short numbers are left alone.
const PHONE =
  /(?:\+\d[\d\s().-]{7,}\d|\(\d{2,5}\)[\s.-]?\d{2,5}(?:[\s.-]?\d{2,5}){1,3}|\b\d{3}[\s.-]\d{3}[\s.-]\d{4}\b)/g
const KEY_RULES: Array<[RegExp, string]> = [
  [/\bamk_[A-Za-z0-9_-]{8,}/g, PLACEHOLDER.apiKey],
  [/\bsk-[A-Za-z0-9_-]{16,}/g, PLACEHOLDER.apiKey],
  [/AIza[0-9A-Za-z_-]{20,}/g, PLACEHOLDER.apiKey],
  [/\b[0-9a-fA-F]{32,}\b/g, PLACEHOLDER.secret]
]
// Long base64/base64url runs that mix upper case, lower case and digits look like secrets, not words.
const BASE64 = /[A-Za-z0-9+/_-]{40,}={0,2}/g
const SENSITIVE_KEY =
  /^(?:password|passwd|secret|client_?secret|token|access_?token|refresh_?token|id_?token|api[-_]?key|x-api-key|authorization|cookie|set-cookie|ticket)$/i

function luhn (digits: string): boolean {
  let sum = 0
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48
    if (i % 2 === 1) { d *= 2; if (d > 9) d -= 9 }
    sum += d
  }
  return sum % 10 === 0
}

const digitCount = (s: string) => s.replace(/\D/g, '').length

/** Redacts one string. */
export function redactText (value: string): string {
  // Every rule needs at least 6 characters; cheap checks skip the rules that cannot match.
  if (value.length < 6) return value
  let out = value
  if (value.length >= 16) {
    for (const [pattern, replacement] of KEY_RULES) out = out.replace(pattern, replacement)
    out = out.replace(BASE64, m => /[A-Z]/.test(m) && /[a-z]/.test(m) && /\d/.test(m) ? PLACEHOLDER.secret : m)
  }
  if (out.includes('@')) out = out.replace(EMAIL, PLACEHOLDER.email)
  if (/\d{2}/.test(out)) {
    out = out.replace(CARD, m => luhn(m.replace(/\D/g, '')) ? PLACEHOLDER.card : m)
    out = out.replace(PHONE, m => { const n = digitCount(m); return n >= 9 && n <= 15 ? PLACEHOLDER.phone : m })
  }
  for (const rule of DEFAULT_SECRET_RULES) {
    const pattern = typeof rule.pattern === 'string' ? new RegExp(rule.pattern, 'g') : rule.pattern
    out = out.replace(pattern, rule.replace ?? PLACEHOLDER.secret)
    pattern.lastIndex = 0
  }
  return out
}

const anonymize = createAnonymizer((value: string, path?: string) => {
  const key = path?.split(/[.[\]]/).filter(Boolean).pop()
  if (key && SENSITIVE_KEY.test(key)) return '[REDACTED]'
  return redactText(value)
}, { maxDepth: 24 })

/** A redacted deep copy of a JSON value (non-JSON values such as functions are dropped). */
export function redact<T> (data: T): T {
  if (data === undefined || data === null) return data
  return anonymize(data)
}

// Request generation: for an operation and a caller, one request of a randomly chosen variant — valid,
// a mutated or wholly hostile body, prototype-named keys, invalid JSON, a wrong content type, a body just
// over BODY_LIMIT, hostile path segments, query strings and headers, a wrong method, bad credentials.
import { hostileValue, NASTY_STRINGS, PROTO_NAMES, toJson, wrongTypeArray, type Rng } from './random.js'
import { METHODS, type Method, type Operation, type Parameter } from './openapi.js'
import type { SchemaValues } from './schema-values.js'

export interface Caller { name: string, headers: Record<string, string> }

export interface FuzzCase {
  operation: string
  caller: string
  variant: string
  method: Method
  url: string
  headers: Record<string, string>
  payload?: string
}

const AGENTS = ['travel', 'content', 'innovation']

const VARIANTS = [
  ['valid', 20], ['mutated-body', 18], ['hostile-body', 8], ['proto-body', 5], ['invalid-json', 7], ['content-type', 7],
  ['over-limit', 1], ['path', 10], ['query', 10], ['headers', 7], ['method', 3], ['auth', 4]
] as const

type Variant = typeof VARIANTS[number][0]

const TOTAL_WEIGHT = VARIANTS.reduce((sum, [, weight]) => sum + weight, 0)

const INVALID_JSON = [
  '{',
  '{"a":',
  '{"a":1,}',
  "{'a':1}",
  '{"a":NaN}',
  '{"a":undefined}',
  '[1,2',
  '\ufeff{}',
  '{"a":1}garbage',
  '{"a":"\u0000"}',
  '{"a":"\\u0000\\u001f"}',
  '{"a":"\\ud800"}',
  'null',
  '',
  ' ',
  '{"__proto__":{"x":1}}',
  '"\\x41"',
  '{"a":01}',
  '{"a":1e}',
  '{"a":"unterminated}',
  '{"a":1} {"b":2}',
  '\u0000',
  '{"a":[' + ']'.repeat(3) + '}'
]

const CONTENT_TYPES = [
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/xml',
  'application/json; charset=utf-16',
  'application/json; charset=latin1',
  'application/jsonx',
  'application/vnd.api+json',
  'APPLICATION/JSON',
  'application/json; charset="utf-8"; x=y',
  'application/json ;',
  'text/event-stream',
  '*/*',
  'application/octet-stream',
  ';;;'
]

const SEGMENTS = [
  ...PROTO_NAMES,
  '%00',
  'a%00b',
  '%E0%A4%A',
  '%',
  '%ZZ',
  '..',
  '.',
  '%2e%2e',
  '..%2F..%2Fetc',
  '%2F',
  'a'.repeat(300),
  '%F0%9F%92%A9',
  '%ED%A0%80',
  '%EF%BB%BF',
  '%20',
  '%0D%0AX-Injected:%201',
  '*',
  '[]',
  'TRAVEL',
  'travel%00',
  '0',
  '-1',
  'null'
]

const QUERY_VALUES = [
  '',
  'abc',
  '-1',
  '0',
  '1e9',
  '999999999999999999999',
  '1.5',
  'NaN',
  'true',
  'null',
  '%00',
  '%E0%A4%A',
  'a'.repeat(5000),
  '%F0%9F%92%A9',
  '__proto__',
  '[object Object]',
  '2027-13-45',
  '%ED%A0%80'
]

const HEADER_CASES: Array<Record<string, string>> = [
  { 'x-request-id': 'x'.repeat(500) },
  { 'x-request-id': 'has space' },
  { 'x-request-id': '../../x' },
  { 'x-request-id': '' },
  { accept: 'text/event-stream' },
  { accept: 'application/xml' },
  { accept: '*/*;q=foo, text/event-stream;q=2' },
  { accept: '' },
  { 'idempotency-key': 'k'.repeat(5000) },
  { 'idempotency-key': '' },
  { 'idempotency-key': '__proto__' },
  { 'last-event-id': 'not-a-sequence' },
  { 'last-event-id': '-1' },
  { 'last-event-id': 'x'.repeat(5000) },
  { 'cache-control': 'no-cache, no-store, max-age=-1' },
  { 'accept-encoding': 'gzip;q=0, br, deflate, identity;q=0, *;q=0' },
  { 'content-length': '99999999999999999999' },
  { 'transfer-encoding': 'chunked' },
  { 'x-forwarded-for': '999.999.999.999, ::ffff:1.2.3.4' },
  { origin: 'null' },
  { 'content-encoding': 'gzip' },
  { 'content-encoding': 'br, gzip' },
  { expect: '100-continue' }
]

const BAD_CREDENTIALS: Array<Record<string, string>> = [
  {},
  { 'x-api-key': 'amk_bogus' },
  { 'x-api-key': 'amk_' + 'z'.repeat(4000) },
  { 'x-api-key': '' },
  { authorization: 'Bearer' },
  { authorization: 'Bearer a.b.c' },
  { authorization: 'Bearer ' + 'e30.e30.' },
  { authorization: 'Basic dXNlcjpwYXNz' },
  { authorization: 'Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiIsInJvbGUiOiJhZG1pbiJ9.' },
  { authorization: 'Bearer ' + 'x'.repeat(9000) },
  { authorization: 'Bearer __proto__' }
]

export class CaseGenerator {
  constructor (private readonly rng: Rng, private readonly values: SchemaValues, private readonly bodyLimit: number) {}

  private variant (): Variant {
    let roll = this.rng.next() * TOTAL_WEIGHT
    for (const [name, weight] of VARIANTS) if ((roll -= weight) < 0) return name
    return 'valid'
  }

  next (operation: Operation, caller: Caller): FuzzCase {
    const rng = this.rng
    const variant = this.variant()
    const headers: Record<string, string> = { ...caller.headers }
    let method = operation.method
    let path = this.path(operation, variant === 'path')
    let query = this.query(operation.parameters.filter(p => p.in === 'query'), variant === 'query')
    let payload: string | undefined
    const wantsBody = operation.body !== undefined || operation.method === 'POST'
    if (wantsBody) headers['content-type'] = 'application/json'
    if (wantsBody) {
      payload = toJson(
        variant === 'mutated-body' ? this.values.mutated(operation.body) : this.values.valid(operation.body)
      )
    }

    switch (variant) {
      case 'hostile-body':
        payload = toJson(rng.chance(0.3) ? wrongTypeArray(rng.pick([100, 5000, 50_000])) : hostileValue(rng))
        break
      case 'proto-body':
        payload = rng.pick([
          '{"__proto__":{"polluted":true},"topic":"x"}',
          '{"constructor":{"prototype":{"polluted":true}}}',
          '{"a":{"__proto__":{"admin":true}}}',
          '{"prototype":1,"hasOwnProperty":"x","toString":null}',
          '{"steps":[{"agent":"__proto__","method":"constructor"}]}',
          '{"workflowName":"__proto__","input":{}}',
          '{"pattern":"__proto__*","requests":[{"method":"__proto__","input":{}}]}',
          '{"email":"__proto__","password":"constructor"}'
        ])
        break
      case 'invalid-json':
        payload = rng.pick(INVALID_JSON)
        headers['content-type'] = 'application/json'
        break
      case 'content-type':
        payload ??= '{}'
        if (rng.chance(0.15)) delete headers['content-type']
        else headers['content-type'] = rng.pick(CONTENT_TYPES)
        break
      case 'over-limit':
        payload = this.overLimit()
        headers['content-type'] = 'application/json'
        break
      case 'headers':
        Object.assign(headers, rng.pick(HEADER_CASES))
        break
      case 'method':
        method = rng.pick(METHODS.filter(m => m !== method))
        break
      case 'auth':
        delete headers['x-api-key']
        delete headers.authorization
        Object.assign(headers, rng.pick(BAD_CREDENTIALS))
        break
      case 'valid':
      case 'mutated-body':
      case 'path':
      case 'query':
        break
    }
    if (rng.chance(0.02)) { path = rng.pick([path + '/', path + '//', path.toUpperCase(), path + '/extra', path.replace('/api/', '/api//')]) }
    if (rng.chance(0.02)) { query += (query ? '&' : '?') + rng.pick(['__proto__[x]=1', 'constructor[prototype][x]=1', '&&&', '=', '%']) }
    return { operation: operation.id, caller: caller.name, variant, method, url: path + query, headers, payload }
  }

  private path (operation: Operation, hostile: boolean): string {
    return operation.path.replace(/\{([^}]+)\}/g, (_, name: string) => {
      if (hostile && this.rng.chance(0.8)) return this.rng.pick(SEGMENTS)
      if (name === 'agent' && this.rng.chance(0.8)) return this.rng.pick(AGENTS)
      const parameter = operation.parameters.find(p => p.in === 'path' && p.name === name)
      return encodeURIComponent(String(this.values.valid(parameter?.schema, 0, name)))
    })
  }

  private query (parameters: Parameter[], hostile: boolean): string {
    const pairs: string[] = []
    for (const parameter of parameters) {
      if (!hostile && !parameter.required && this.rng.chance(0.5)) continue
      if (parameter.name === 'ticket' && !hostile) continue
      const value = hostile
        ? this.rng.pick(QUERY_VALUES)
        : encodeURIComponent(String(this.values.valid(parameter.schema)))
      pairs.push(`${parameter.name}=${value}`)
      if (hostile && this.rng.chance(0.3)) pairs.push(`${parameter.name}=${this.rng.pick(QUERY_VALUES)}`)
    }
    if (hostile) {
      pairs.push(
        `${this.rng.pick([...PROTO_NAMES, 'unknown', ''])}=${encodeURIComponent(this.rng.pick(NASTY_STRINGS.filter(s => !/[\ud800-\udfff]/.test(s))))}`
      )
    }
    return pairs.length > 0 ? `?${pairs.join('&')}` : ''
  }

  /** A JSON body a little over BODY_LIMIT (valid JSON, so only the size is wrong). */
  private overLimit (): string {
    const extra = this.rng.int(1, 64)
    const filler = this.bodyLimit + extra - 10
    return this.rng.chance(0.5) ? `{"a":"${'x'.repeat(filler)}"}` : `[${'1,'.repeat(Math.floor(filler / 2))}1]`
  }
}

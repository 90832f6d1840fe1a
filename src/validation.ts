// Schema compilers. Request validation uses two Ajv instances: request bodies are validated strictly (no
// type coercion, extra fields rejected), while querystring, params and headers coerce strings to the
// declared types. A 400 lists the bad fields, but boundedly: a first pass stops at the first error, and
// only a small input is validated again with allErrors to list more (at most MAX_VALIDATION_DETAILS), so
// a huge invalid body costs one cheap pass and a short answer. Response serialization is Fastify's own
// (fast-json-stringify). Both are installed as the schema controller's factories (serverOptions), so every
// encapsulated context uses them — including route plugins that call app.addSchema, which get compilers
// built from their own set of shared schemas.
//
// Compiled functions are kept per process, keyed by content (the route schema and the shared schemas it
// may reference): compiling was most of the cost of building the app, and tests build hundreds of apps
// from the same schemas. A server builds one app, so there the cache changes nothing.
import { createHash } from 'node:crypto'
import { Ajv, type Options, type ValidateFunction } from 'ajv'
import addFormats from 'ajv-formats'
import {
  SerializerSelector,
  type Options as SerializerOptions,
  type SerializerFactory
} from '@fastify/fast-json-stringify-compiler'
import type { FastifySchemaCompiler, FastifySchemaValidationError } from 'fastify'

type Validator = ReturnType<FastifySchemaCompiler<unknown>>
type SerializerCompiler = ReturnType<SerializerFactory>
type Serializer = ReturnType<SerializerCompiler>

const validators = new Map<string, Validator>()
const serializers = new Map<string, Serializer>()

function fingerprint (value: unknown): string {
  return createHash('sha1').update(JSON.stringify(value) ?? '').digest('base64')
}

function cached<T> (compiled: Map<string, T>, key: string, compile: () => T): T {
  let fn = compiled.get(key)
  if (!fn) {
    fn = compile()
    compiled.set(key, fn)
  }
  return fn
}

/** A JSON Schema object (shared schemas and route part schemas are objects, never boolean schemas). */
function isSchemaObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** Most validation problems reported for one request part. */
export const MAX_VALIDATION_DETAILS = 20
/** Inputs with at most this many values (objects, arrays and scalars) are validated again to list every error. */
const FULL_REPORT_MAX_NODES = 2000

/** How many values `data` holds, counting no further than `limit`. */
function countNodes (data: unknown, limit: number): number {
  const stack = [data]
  let count = 0
  while (stack.length > 0 && count < limit) {
    const value = stack.pop()
    count++
    if (value !== null && typeof value === 'object') {
      for (const child of Object.values(value)) stack.push(child)
    }
  }
  return count
}

/** Stops at the first error; lists up to MAX_VALIDATION_DETAILS errors when the input is small. */
function boundedValidator (first: ValidateFunction, every: () => ValidateFunction): Validator {
  const validate: Validator = (data: unknown): boolean => {
    if (first(data)) {
      validate.errors = null
      return true
    }
    let errors: FastifySchemaValidationError[] = first.errors ?? []
    if (countNodes(data, FULL_REPORT_MAX_NODES) < FULL_REPORT_MAX_NODES) {
      const all = every()
      if (!all(data) && all.errors) errors = all.errors
    }
    validate.errors = errors.slice(0, MAX_VALIDATION_DETAILS)
    return false
  }
  validate.errors = null
  return validate
}

function createAjv (coerceTypes: Options['coerceTypes'], allErrors: boolean, shared: Record<string, unknown>): Ajv {
  // validateSchema: false — TypeBox emits valid schemas, and checking each against the meta-schema cost a
  // quarter of an app build.
  const ajv = new Ajv({
    coerceTypes,
    useDefaults: true,
    removeAdditional: false,
    allErrors,
    strict: false,
    validateSchema: false
  })
  addFormats.default(ajv)
  for (const [id, schema] of Object.entries(shared)) {
    if (!isSchemaObject(schema)) throw new TypeError(`Shared schema ${id} is not an object`)
    const $id = typeof schema.$id === 'string' ? schema.$id : undefined
    if (!ajv.getSchema($id ?? id)) ajv.addSchema(schema, $id ? undefined : id)
  }
  return ajv
}

/** Fastify's `schemaController.compilersFactory.buildValidator`. */
export function buildValidator (externalSchemas: Record<string, unknown> = {}): FastifySchemaCompiler<unknown> {
  const shared = fingerprint(externalSchemas)
  const instances = new Map<string, Ajv>()
  const ajvFor = (coerce: Options['coerceTypes'], allErrors: boolean) => {
    const key = `${coerce}:${allErrors}`
    let ajv = instances.get(key)
    if (!ajv) instances.set(key, ajv = createAjv(coerce, allErrors, externalSchemas))
    return ajv
  }
  return ({ schema, httpPart }) => {
    const coerce = httpPart === 'body' ? false : 'array'
    if (!isSchemaObject(schema)) throw new TypeError(`The ${httpPart ?? 'request'} schema is not an object`)
    return cached(validators, `validate:${coerce}:${shared}:${fingerprint(schema)}`, () => {
      let every: ValidateFunction | undefined
      // The allErrors validator is compiled on first need: most schemas never see a bad request.
      return boundedValidator(ajvFor(coerce, false).compile(schema),
        () => (every ??= ajvFor(coerce, true).compile(schema)))
    })
  }
}

const serializerFactory = SerializerSelector()

/**
 * The shared schemas `schema` refers to, directly or through each other. fast-json-stringify checks and
 * indexes every shared schema it is given on every build, so handing each response schema only the ones it
 * uses (a few of the hundred) took a third off the cost of compiling the app's serializers.
 */
function referenced (schema: unknown, shared: Record<string, unknown>): Record<string, unknown> {
  const used: Record<string, unknown> = {}
  const stack = [schema]
  while (stack.length > 0) {
    const value = stack.pop()
    if (value === null || typeof value !== 'object') continue
    for (const [key, child] of Object.entries(value)) {
      if (key !== '$ref' || typeof child !== 'string') {
        stack.push(child)
        continue
      }
      const id = child.split('#')[0]!
      if (id in shared && !(id in used)) stack.push(used[id] = shared[id])
    }
  }
  return used
}

/**
 * Fastify's `schemaController.compilersFactory.buildSerializer`: its default compiler (fast-json-stringify),
 * given only the shared schemas each response schema refers to, cached.
 */
export function buildSerializer (externalSchemas: unknown = {}, options: SerializerOptions = {}): SerializerCompiler {
  const shared = isSchemaObject(externalSchemas) ? externalSchemas : {}
  const sharedKey = fingerprint([shared, options])
  return (route) => cached(serializers, `serialize:${sharedKey}:${fingerprint(route.schema)}`, () =>
    serializerFactory(referenced(route.schema, shared), options)(route))
}

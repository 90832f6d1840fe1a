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
import { SerializerSelector } from '@fastify/fast-json-stringify-compiler'
import type { FastifySchema, FastifySchemaCompiler, FastifySerializerCompiler } from 'fastify'

type Validator = ReturnType<FastifySchemaCompiler<FastifySchema>>
type Serializer = ReturnType<FastifySerializerCompiler<unknown>>

const compiled = new Map<string, Validator | Serializer>()

function fingerprint (value: unknown): string {
  return createHash('sha1').update(JSON.stringify(value) ?? '').digest('base64')
}

function cached<T extends Validator | Serializer> (key: string, compile: () => T): T {
  let fn = compiled.get(key) as T | undefined
  if (!fn) {
    fn = compile()
    compiled.set(key, fn)
  }
  return fn
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
  const validate = (data: unknown): boolean => {
    if (first(data)) {
      validate.errors = null
      return true
    }
    let errors = first.errors ?? []
    if (countNodes(data, FULL_REPORT_MAX_NODES) < FULL_REPORT_MAX_NODES) {
      const all = every()
      if (!all(data) && all.errors) errors = all.errors
    }
    validate.errors = errors.slice(0, MAX_VALIDATION_DETAILS)
    return false
  }
  validate.errors = null as ValidateFunction['errors']
  return validate as unknown as Validator
}

function createAjv (coerceTypes: Options['coerceTypes'], allErrors: boolean, shared: Record<string, unknown>): Ajv {
  // validateSchema: false — TypeBox emits valid schemas, and checking each against the meta-schema cost a
  // quarter of an app build.
  const ajv = new Ajv({ coerceTypes, useDefaults: true, removeAdditional: false, allErrors, strict: false, validateSchema: false })
  addFormats.default(ajv)
  for (const [id, schema] of Object.entries(shared)) {
    const withId = schema as { $id?: string }
    if (!ajv.getSchema(withId.$id ?? id)) ajv.addSchema(schema as object, withId.$id ? undefined : id)
  }
  return ajv
}

/** Fastify's `schemaController.compilersFactory.buildValidator`. */
export function buildValidator (externalSchemas: Record<string, unknown> = {}): FastifySchemaCompiler<FastifySchema> {
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
    return cached(`validate:${coerce}:${shared}:${fingerprint(schema)}`, () => {
      let every: ValidateFunction | undefined
      // The allErrors validator is compiled on first need: most schemas never see a bad request.
      return boundedValidator(ajvFor(coerce, false).compile(schema as object),
        () => (every ??= ajvFor(coerce, true).compile(schema as object)))
    })
  }
}

const serializerFactory = SerializerSelector()

/** Fastify's `schemaController.compilersFactory.buildSerializer`: its default compiler, cached. */
export function buildSerializer (externalSchemas: Record<string, unknown> = {}, options: object = {}): FastifySerializerCompiler<unknown> {
  const shared = fingerprint([externalSchemas, options])
  let compile: ReturnType<typeof serializerFactory> | undefined
  return (route) => cached(`serialize:${shared}:${fingerprint(route.schema)}`, () =>
    (compile ??= serializerFactory(externalSchemas, options))(route as never) as Serializer)
}

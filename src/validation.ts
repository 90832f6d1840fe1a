// Schema compilers. Request validation uses two Ajv instances: request bodies are validated strictly (no
// type coercion, extra fields rejected), while querystring, params and headers coerce strings to the
// declared types; allErrors so a 400 lists every bad field. Response serialization is Fastify's own
// (fast-json-stringify). Both are installed as the schema controller's factories (serverOptions), so every
// encapsulated context uses them — including route plugins that call app.addSchema, which get compilers
// built from their own set of shared schemas.
//
// Compiled functions are kept per process, keyed by content (the route schema and the shared schemas it
// may reference): compiling was most of the cost of building the app, and tests build hundreds of apps
// from the same schemas. A server builds one app, so there the cache changes nothing.
import { createHash } from 'node:crypto'
import { Ajv, type Options } from 'ajv'
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

function createAjv (coerceTypes: Options['coerceTypes'], shared: Record<string, unknown>): Ajv {
  // validateSchema: false — TypeBox emits valid schemas, and checking each against the meta-schema cost a
  // quarter of an app build.
  const ajv = new Ajv({ coerceTypes, useDefaults: true, removeAdditional: false, allErrors: true, strict: false, validateSchema: false })
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
  let strict: Ajv | undefined
  let coercing: Ajv | undefined
  return ({ schema, httpPart }) => {
    const body = httpPart === 'body'
    return cached(`validate:${body ? 'strict' : 'coerce'}:${shared}:${fingerprint(schema)}`, () => {
      const ajv = body ? (strict ??= createAjv(false, externalSchemas)) : (coercing ??= createAjv('array', externalSchemas))
      return ajv.compile(schema as object) as Validator
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

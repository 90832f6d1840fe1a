// Shared TypeBox schemas. Components with an $id are registered once (app.addSchema) and appear in
// OpenAPI under their own names; routes point at them with ref().
import { Type, type Static, type TSchema } from 'typebox'

/** A schema that may be a component: registered under its `$id`. */
export type Component = TSchema & { $id?: string }

/** A $ref to a registered component, typed as the component (Type.Ref alone is typed unknown). */
export function ref<T extends Component> (schema: T) {
  const id = schema.$id
  if (!id) throw new Error('ref() needs a schema with an $id')
  return Type.Unsafe<Static<T>>(Type.Ref(id))
}

export const ErrorResponseSchema = Type.Object({
  statusCode: Type.Integer({ description: 'HTTP status code' }),
  code: Type.String({ description: 'Stable machine-readable code, AMK_…', examples: ['AMK_VALIDATION'] }),
  error: Type.String({ description: 'HTTP status text' }),
  message: Type.String({ description: 'Human-readable explanation' }),
  requestId: Type.String({ description: 'Same value as the x-request-id response header' }),
  details: Type.Optional(Type.Unknown({ description: 'Per-field validation problems, available names, limits…' }))
}, { $id: 'ErrorResponse', additionalProperties: false, description: 'The one error shape of every endpoint' })
export type ErrorResponse = Static<typeof ErrorResponseSchema>

/**
 * The error shape's fields, carried by 503 bodies that are reports (health, probes, agent health), so a
 * generated client's error type (ErrorResponse | the report) still has `.code` and `.message`.
 */
export const UnavailableFields = {
  statusCode: Type.Literal(503),
  code: Type.Literal('AMK_SERVICE_UNAVAILABLE'),
  error: Type.String(),
  message: Type.String(),
  requestId: Type.String()
}

export const UnavailableFieldsSchema = Type.Object(UnavailableFields)

/** The values of UnavailableFields for one response. */
export const unavailableFields = (requestId: string, message: string): Static<typeof UnavailableFieldsSchema> =>
  ({ statusCode: 503, code: 'AMK_SERVICE_UNAVAILABLE', error: 'Service Unavailable', message, requestId })

export const HealthStatusSchema = Type.Union([
  Type.Literal('healthy'), Type.Literal('degraded'), Type.Literal('unhealthy')
], { $id: 'HealthStatus' })
export type HealthStatus = Static<typeof HealthStatusSchema>

export const ComponentHealthSchema = Type.Object({
  status: ref(HealthStatusSchema),
  latencyMs: Type.Number(),
  message: Type.String(),
  details: Type.Optional(Type.Unknown())
}, { $id: 'ComponentHealth', additionalProperties: false })
export type ComponentHealth = Static<typeof ComponentHealthSchema>

export const OkSchema = Type.Object({ success: Type.Boolean(), message: Type.Optional(Type.String()) }, { $id: 'Ok' })

/** Components registered on the app, in dependency order. */
export const sharedSchemas = [ErrorResponseSchema, HealthStatusSchema, ComponentHealthSchema, OkSchema]

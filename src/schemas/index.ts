// The schema registry: every shared component of the API, registered once at the root of the app so
// each route (and its validator and serializer) resolves them, and OpenAPI shows them under their names.
// Routes point at a component with ref(Schema) (src/schemas/common.ts), never with a hand-written id.
import type { FastifyInstance } from 'fastify'
import { agUiSchemas } from './ag-ui.js'
import { managementSchemas } from './agent-management.js'
import { agentSchemas } from './agents.js'
import { authSchemas } from './auth.js'
import { sharedSchemas, type Component } from './common.js'
import { coordinatorSchemas } from './coordinator.js'
import { serviceSchemas } from './service.js'
import { streamSchemas } from './streams.js'
import { usageSchemas } from './usage.js'

/** Every component, in the order OpenAPI lists them. */
export const componentSchemas: readonly Component[] = [
  ...sharedSchemas,
  ...agentSchemas,
  ...streamSchemas,
  ...serviceSchemas,
  ...authSchemas,
  ...usageSchemas,
  ...managementSchemas,
  ...coordinatorSchemas,
  ...agUiSchemas
]

/** Registers every component on the app (once, from app.ts, before any plugin or route). */
export function registerSchemas (app: FastifyInstance): void {
  for (const schema of componentSchemas) app.addSchema(schema)
}

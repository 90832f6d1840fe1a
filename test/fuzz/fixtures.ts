// Real identifiers for the fuzzer: before the run, the admin starts a workflow run and a stream and creates
// an API key, and the predefined workflows are read, so path parameters (runId, streamId, id) and workflow
// requests can name things that exist and reach the handlers behind the lookups.
import type { FastifyInstance } from 'fastify'
import type { Caller } from './cases.js'
import type { SchemaValues } from './schema-values.js'

const JSON_BODY = { 'content-type': 'application/json' }

/** Fills `values` with real names; a setup request that fails only leaves that hint out. */
export async function seedFixtures (app: FastifyInstance, admin: Caller, values: SchemaValues): Promise<void> {
  const headers = { ...admin.headers, ...JSON_BODY }
  const workflows = await app.inject({ url: '/api/coordinator/workflows', headers: admin.headers })
  if (workflows.statusCode === 200) values.workflows = workflows.json().workflows

  const run = await app.inject({
    method: 'POST',
    url: '/api/coordinator/sequential',
    headers,
    payload: { steps: [{ agent: 'content', method: 'researchTopic', input: { topic: 'Fuzzing fixtures' } }] }
  })
  if (run.statusCode === 200) values.hints.runId = [run.json().runId]

  const stream = await app.inject({
    method: 'POST',
    url: '/api/stream/blog',
    headers,
    payload: { topic: 'Fuzzing fixtures' }
  })
  const streamId = /"streamId":"([^"]+)"/.exec(stream.body)?.[1]
  if (stream.statusCode === 200 && streamId) values.hints.streamId = [streamId]

  const key = await app.inject({
    method: 'POST',
    url: '/api/auth/keys',
    headers,
    payload: { name: 'fuzz fixture', role: 'user' }
  })
  if (key.statusCode === 201) values.hints.id = [key.json().id]
}

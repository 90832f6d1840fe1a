// Shared pieces of the coordinator tests: seeded API keys, request helpers, an SSE frame parser, and a
// check that every completed step's data matches its method's output schema.
import type { FastifyInstance } from 'fastify'
import { Value } from 'typebox/value'

export const KEYS = {
  alice: 'amk_coordinator_alice_0000000001',
  bob: 'amk_coordinator_bob_00000000000002',
  admin: 'amk_coordinator_admin_000000000003'
}

export const COORDINATOR_ENV = {
  VALID_API_KEYS: `${KEYS.alice}:user,${KEYS.bob}:user,${KEYS.admin}:admin`,
  COORDINATOR_POLL_MS: '25',
  // Tests send bursts; limits have their own tests.
  RATE_LIMIT_OVERRIDES: JSON.stringify({ global: 10_000, coordinator: 10_000 })
}

export const as = (who: keyof typeof KEYS, extra: Record<string, string> = {}) => ({ 'x-api-key': KEYS[who], ...extra })

export async function post (
  app: FastifyInstance,
  url: string,
  payload: unknown,
  headers: Record<string, string> = as('alice')
) {
  return app.inject({ method: 'POST', url: `/api/coordinator/${url}`, headers, payload: payload as object })
}

export interface SseFrame { id: string, event: string, data: any }

/** Frames of a text/event-stream body (comments and the retry hint skipped). */
export function parseSse (body: string): SseFrame[] {
  return body.split('\n\n').filter(block => /^(id|event|data):/m.test(block)).map(block => {
    const field = (name: string) =>
      block
        .split('\n')
        .filter(l => l.startsWith(`${name}: `))
        .map(l => l.slice(name.length + 2))
        .join('\n')
    return { id: field('id'), event: field('event'), data: JSON.parse(field('data')) }
  })
}

/** Problems of each completed step's data against its method's output schema (empty when all validate). */
export function outputProblems (
  app: FastifyInstance,
  steps: Array<{ agent: string; method: string; status: string; data?: unknown }>
): string[] {
  const definitions = app.agents.definitions as unknown as Record<
    string,
    { methods: Record<string, { output: Parameters<typeof Value.Check>[0] }> }
  >
  return steps
    .filter(s => s.status === 'completed' && !Value.Check(definitions[s.agent].methods[s.method].output, s.data))
    .map(s => `${s.agent}.${s.method}`)
}

export async function ledgerRows (app: FastifyInstance, runId?: string): Promise<number> {
  const [row] = await app.db.query<{ n: number }>(
    runId
      ? 'SELECT count(*)::int AS n FROM usage_ledger WHERE run_id = $1'
      : 'SELECT count(*)::int AS n FROM usage_ledger',
    runId ? [runId] : []
  )
  return row.n
}

export async function runRows (app: FastifyInstance): Promise<number> {
  const [row] = await app.db.query<{ n: number }>('SELECT count(*)::int AS n FROM workflow_runs')
  return row.n
}

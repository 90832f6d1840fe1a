// AG-UI routes: POST /api/ag-ui/<agent>/<method> streams an agent method, POST /api/ag-ui/workflows/<name>
// runs a predefined workflow; both take AG-UI's RunAgentInput and answer AG-UI events (src/protocols). Thin:
// agent methods go through the stream service (caps, budgets precheck, ledger, resume, cancel are the native
// ones) with the AG-UI wire; workflows through the coordinator, the AG-UI runId being the Idempotency-Key.
import { createHash } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { cacheBypass } from '../agents/request-rules.js'
import { validateInput } from '../agents/validate.js'
import { prepareWorkflow, WORKFLOWS } from '../coordinator/workflows.js'
import { agUiWire, inputOf, onDisconnectOf, type AgUiRun } from '../protocols/ag-ui.js'
import { streamWorkflowAgUi } from '../protocols/ag-ui-workflow.js'
import { AgUiRunAgentInputSchema, agUiSseResponse, type AgUiRunAgentInput } from '../schemas/ag-ui.js'
import { ref } from '../schemas/common.js'
import { parseEventId } from '../streams/events.js'
import type { Opener } from '../streams/service.js'
import { COORDINATOR_RATE_LIMIT } from './coordinator.js'
import { callerOf, callerSecurity as security, openSse } from './toolkit.js'

const tags = ['ag-ui']
const noMore = { description: 'Resumed at the end of the stream: nothing follows', type: 'null' }
const INPUT_RULE =
  'The input is `forwardedProps.input`, else the last user message\'s content parsed as a JSON object; ' +
  'a missing or invalid input is a 400 before the stream opens.'

function lastEventIdOf (request: FastifyRequest): string | undefined {
  const header = request.headers['last-event-id']
  return typeof header === 'string' && header ? header : undefined
}

const runOf = (body: AgUiRunAgentInput): AgUiRun => ({ threadId: body.threadId, runId: body.runId })
/** The Idempotency-Key of a workflow's AG-UI run: a digest, so any runId the protocol allows makes a valid key. */
const idempotencyKeyOf = (runId: string) => `ag-ui:${createHash('sha256').update(runId).digest('base64url')}`

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const service = app.streams.service

  for (const definition of Object.values(app.agents.definitions)) {
    for (const method of Object.values(definition.methods)) {
      const agent = definition.name
      const target = { agent, method: method.name }
      app.post(
        `/${agent}/${method.name}`,
        {
          config: {
            permission: 'agent:streaming',
            rateLimits: [
              { scope: agent, max: definition.rateLimit },
              { scope: `${agent}.${method.name}`, max: method.rateLimit }
            ]
          },
          schema: {
            operationId: `agui_${agent}_${method.name}`,
            tags,
            summary: `AG-UI run of ${agent}.${method.name}: ${method.summary}`,
            description:
              `${INPUT_RULE} Tokens come as TEXT_MESSAGE_*, the result as STATE_SNAPSHOT and RUN_FINISHED.result, ` +
              'a failure as RUN_ERROR with this API\'s code. The same request with a Last-Event-ID header resumes ' +
              'the stream it names; POST /api/stream/{streamId}/cancel cancels it (streamId: RUN_STARTED.metadata).',
            security,
            body: ref(AgUiRunAgentInputSchema),
            response: { 200: agUiSseResponse, 204: noMore }
          }
        },
        async (request, reply) => {
          const caller = callerOf(request)
          const run = runOf(request.body)
          const opener: Opener = () => ({ ...openSse(reply), wire: agUiWire(run, target) })
          const lastEventId = lastEventIdOf(request)
          if (lastEventId) {
            const streamId = lastEventId.slice(0, Math.max(0, lastEventId.lastIndexOf('-')))
            const served = await service.resume({ streamId, lastEventId, caller }, opener)
            if (served === 'finished') return reply.code(204).send()
            return
          }
          const input = inputOf(request.body)
          validateInput(method.input, input, method.refine) // a 400 now, not a RUN_ERROR after the stream opened
          await service.start({
            agent,
            method: method.name,
            input,
            caller,
            onDisconnect: onDisconnectOf(request.body),
            items: method.streamItems,
            noCache: cacheBypass(request.headers)
          }, opener)
        }
      )
    }
  }

  for (const workflow of Object.values(WORKFLOWS)) {
    app.post(
      `/workflows/${workflow.name}`,
      {
        config: { permission: 'agent:execute', rateLimits: [{ scope: 'coordinator', max: COORDINATOR_RATE_LIMIT }] },
        schema: {
          operationId: `agui_workflow_${workflow.name.replace(/-/g, '_')}`,
          tags,
          summary: `AG-UI run of the ${workflow.name} workflow: ${workflow.description}`,
          description:
            `${INPUT_RULE} Steps come as STEP_STARTED / STEP_FINISHED, each step's tokens as one text message, ` +
            'its output as a STATE_DELTA, the run as the last STATE_SNAPSHOT. The runId is the Idempotency-Key ' +
            '(per caller, 24 h): the same RunAgentInput again joins the same run (with Last-Event-ID: from there); ' +
            'POST /api/coordinator/runs/{runId}/cancel cancels it (runId: RUN_STARTED.metadata.coordinatorRunId).',
          security,
          body: ref(AgUiRunAgentInputSchema),
          response: { 200: agUiSseResponse }
        }
      },
      async (request, reply) => {
        const input = inputOf(request.body)
        const gone = new AbortController()
        reply.raw.once('close', () => gone.abort())
        const handle = await app.coordinator.start({
          caller: callerOf(request),
          kind: 'workflow',
          body: { workflowName: workflow.name, input },
          spec: prepareWorkflow(workflow.name, input),
          workflowName: workflow.name,
          idempotencyKey: idempotencyKeyOf(request.body.runId),
          noCache: cacheBypass(request.headers),
          streamTokens: true,
          signal: gone.signal
        })
        reply.header('x-run-id', handle.runId)
        if (handle.replayed) reply.header('idempotent-replayed', 'true')
        const position = parseEventId(lastEventIdOf(request))
        const { res, headers } = openSse(reply)
        await streamWorkflowAgUi(res, headers, handle, runOf(request.body), {
          heartbeatMs: app.config.STREAM_HEARTBEAT_MS,
          retryMs: app.config.STREAM_RETRY_MS,
          afterSeq: position?.streamId === handle.runId ? position.seq : 0,
          onDisconnect: onDisconnectOf(request.body)
        })
      }
    )
  }
}

export default routes

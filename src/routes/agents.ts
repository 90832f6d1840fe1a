// Invoke routes: POST /api/agents/<agent>/<method>, one concrete route per method so OpenAPI carries its
// exact schemas and an operationId like travel_searchFlights. Thin: the agent service validates again,
// caches, meters and records usage. A client that disconnects aborts the upstream LLM request.
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { InvokeUsageSchema, methodSchema } from '../schemas/agents.js'
import { ref } from '../schemas/common.js'
import { cacheBypass } from '../agents/request-rules.js'
import { isRecord } from '../agents/unknown-values.js'
import { LazyAbortController } from '../agents/call-abort.js'
import type { AgentName } from '../agents/types.js'
import { callerSecurity as security } from './toolkit.js'

/**
 * The call's controller: aborts when the client goes away before the reply is written, and (handed to the agent
 * service) when the instance shuts down. Lazy: a call that makes no provider call (a cache hit) makes no signal.
 */
function disconnectController (request: FastifyRequest, reply: FastifyReply): LazyAbortController {
  const controller = new LazyAbortController()
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) controller.abort(new Error(`client disconnected (${request.id})`))
  })
  return controller
}

const routes: FastifyPluginAsyncTypebox = async (app) => {
  for (const definition of Object.values(app.agents.definitions)) {
    for (const method of Object.values(definition.methods)) {
      const agent = definition.name
      app.post(
        `/${agent}/${method.name}`,
        {
          config: {
            permission: 'agent:execute',
            rateLimits: [
              { scope: agent, max: definition.rateLimit },
              { scope: `${agent}.${method.name}`, max: method.rateLimit }
            ]
          },
          schema: {
            operationId: `${agent}_${method.name}`,
            tags: ['agents'],
            summary: method.summary,
            description:
              `Runs ${agent}.${method.name} (${method.model ?? definition.defaultModel} model tier). ` +
              `Responses are cached for ${method.cacheTtl} s (reply \`cached\` and header \`x-cache\`); ` +
              'send `Cache-Control: no-cache` or `no-store` to bypass the cache. ' +
              `Limits per caller: ${method.rateLimit}/min for this method, ` +
              `${definition.rateLimit}/min for the ${agent} agent.`,
            security,
            body: ref(methodSchema(agent, method.name, 'Input')),
            response: {
              200: Type.Object(
                {
                  success: Type.Literal(true),
                  agent: Type.Literal(agent),
                  method: Type.Literal(method.name),
                  data: ref(methodSchema(agent, method.name, 'Output')),
                  usage: ref(InvokeUsageSchema),
                  cached: Type.Boolean(),
                  durationMs: Type.Integer({ minimum: 0 }),
                  traceId: Type.String()
                },
                { description: 'The method output in `data`', headers: { 'x-cache': Type.Enum(['hit', 'miss']) } }
              )
            }
          }
        },
        async (request, reply) => {
          const result = await app.agents.invoke({
            agent,
            method: method.name,
            input: isRecord(request.body) ? request.body : {}, // validated against the method's input schema
            caller: request.caller,
            controller: disconnectController(request, reply),
            noCache: cacheBypass(request.headers)
          })
          reply.header('x-cache', result.cached ? 'hit' : 'miss')
          return {
            success: true as const,
            agent,
            method: method.name,
            data: result.data,
            usage: result.usage,
            cached: result.cached,
            durationMs: result.durationMs,
            traceId: result.traceId
          }
        }
      )
    }
  }

  // Anything else under /api/agents/:agent/:method is an unknown agent or method: 404 listing what exists.
  // Concrete routes win in the router, so this only sees names that do not exist.
  app.post(
    '/:agent/:method',
    {
      config: { permission: 'agent:execute' },
      schema: {
        hide: true,
        params: Type.Object({ agent: Type.String({ maxLength: 100 }), method: Type.String({ maxLength: 100 }) })
      }
    },
    async request => {
      const { agent, method } = request.params
      await app.agents.invoke({ agent: agent as AgentName, method, input: {}, caller: request.caller })
      throw new Error('unreachable: a concrete route serves every known method')
    }
  )
}

export default routes

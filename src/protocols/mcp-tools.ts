// The MCP tool catalogue: every agent method (`<agent>_<method>`), every predefined workflow
// (`workflow_<name>`) and two management tools, each with the permission it needs, self-contained JSON
// Schemas, and a call that goes through the same services as the REST routes: the agent service (budgets,
// usage ledger, tracing, statistics), the coordinator, and the rate limiter with the routes' own scopes.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import type { Caller, Permission } from '../auth/roles.js'
import { findAgent } from '../agents/index.js'
import { unknownAgent } from '../agents/request-rules.js'
import { isRecord, stringFieldOf } from '../agents/unknown-values.js'
import { validateInput } from '../agents/validate.js'
import type { AgentName } from '../agents/types.js'
import { cachePattern } from '../cache/legacy-pattern.js'
import { prepareWorkflow, WORKFLOWS } from '../coordinator/workflows.js'
import { BadRequestError, InternalError } from '../errors.js'
import { COORDINATOR_RATE_LIMIT } from '../routes/coordinator.js'
import { AgentOverviewSchema, CacheClearSchema } from '../schemas/agent-management.js'
import { RunSchema } from '../schemas/coordinator.js'
import type { RateLimitRule } from '../route-policy.js'
import { selfContained, type ObjectSchema } from './mcp-schema.js'
import { throttle } from './mcp-calls.js'
import { runWorkflow } from './mcp-workflow.js'

/** What a running tool call may use: who calls, the HTTP request (rate limits), cancellation and progress. */
export interface ToolContext {
  caller: Caller
  request: FastifyRequest
  signal: AbortSignal
  /** Set when the client asked for progress (`_meta.progressToken`); throttled by the caller. */
  progress?: (progress: number, total: number | undefined, message: string) => void
}

/** A tool's output (its structuredContent) and what goes beside it in the result's `_meta`. */
export interface ToolOutput { output: Record<string, unknown>, meta?: Record<string, unknown> }

export interface McpTool {
  name: string
  title: string
  description: string
  permission: Permission
  inputSchema: ObjectSchema
  outputSchema: ObjectSchema
  annotations: { readOnlyHint: boolean, destructiveHint: boolean, idempotentHint: boolean, openWorldHint: boolean }
  call(args: Record<string, unknown>, ctx: ToolContext): Promise<ToolOutput>
}

/** Least time between two token progress notifications of one call. */
export const PROGRESS_INTERVAL_MS = 250

const generating = { readOnlyHint: true, destructiveHint: false, idempotentHint: false, openWorldHint: true }

export function buildTools (app: FastifyInstance): McpTool[] {
  const limited = (ctx: ToolContext, rules: RateLimitRule[]) => app.limiter.enforce(ctx.request, rules)
  const tools: McpTool[] = []

  for (const definition of Object.values(app.agents.definitions)) {
    for (const method of Object.values(definition.methods)) {
      const agent: AgentName = definition.name
      tools.push({
        name: `${agent}_${method.name}`,
        title: `${agent}.${method.name}`,
        description: `${method.summary} (the ${agent} agent; same as POST /api/agents/${agent}/${method.name})`,
        permission: 'agent:execute',
        inputSchema: selfContained(method.input),
        outputSchema: selfContained(method.output),
        annotations: generating,
        async call (args, ctx) {
          await limited(ctx, [
            { scope: agent, max: definition.rateLimit },
            { scope: `${agent}.${method.name}`, max: method.rateLimit }
          ])
          // Token progress: the characters generated so far, at most one notification per interval.
          const progress = ctx.progress && throttle(ctx.progress, PROGRESS_INTERVAL_MS)
          let chars = 0
          const result = await app.agents.invoke({
            agent,
            method: method.name,
            input: args,
            caller: ctx.caller,
            signal: ctx.signal,
            ...(progress
              ? {
                  onDelta: (delta: string) => {
                    chars += delta.length
                    progress(chars, undefined, `${chars} characters generated`)
                  }
                }
              : {})
          })
          // The service validated the data against the method's output schema, an object schema.
          if (!isRecord(result.data)) throw new InternalError(`${agent}.${method.name} answered no object`)
          return {
            output: result.data,
            meta: { usage: result.usage, cached: result.cached, durationMs: result.durationMs, traceId: result.traceId }
          }
        }
      })
    }
  }

  const runOutput = selfContained(RunSchema)
  for (const workflow of Object.values(WORKFLOWS)) {
    tools.push({
      name: `workflow_${workflow.name}`,
      title: `workflow ${workflow.name}`,
      description:
        `${workflow.description} (a ${workflow.strategy} workflow of ${workflow.steps.length} steps; ` +
        `same as POST /api/coordinator/workflow with workflowName "${workflow.name}"). The result is the run.`,
      permission: 'agent:execute',
      inputSchema: selfContained(workflow.input),
      outputSchema: runOutput,
      annotations: generating,
      async call (args, ctx) {
        await limited(ctx, [{ scope: 'coordinator', max: COORDINATOR_RATE_LIMIT }])
        const spec = prepareWorkflow(workflow.name, args)
        const view = await runWorkflow(app.coordinator, workflow.name, args, spec, ctx)
        return { output: { ...view }, meta: { runId: view.runId } }
      }
    })
  }

  const names = Object.keys(app.agents.definitions)
  const adminRules = () => [{ scope: 'admin', max: app.limiter.settings.adminMax }]
  const StatsInput = Type.Object({}, { additionalProperties: false })
  tools.push({
    name: 'agents_stats',
    title: 'Agent statistics',
    description: 'Per agent: calls, errors, cache hit rate, tokens, cost, latency (as GET /api/agents/overview)',
    permission: 'agent:stats',
    inputSchema: selfContained(StatsInput),
    outputSchema: selfContained(AgentOverviewSchema),
    annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
    async call (args) {
      validateInput(StatsInput, args) // counted like GET /api/agents/overview: under `global` only
      const agents = await Promise.all(names.map(async name => ({
        ...(await app.agentStats.summary(name)),
        health: app.agentStats.health(name).status
      })))
      const sum = (pick: (a: (typeof agents)[number]) => number) => agents.reduce((total, a) => total + pick(a), 0)
      const tokens = {
        input: sum(a => a.tokens.input),
        output: sum(a => a.tokens.output),
        total: sum(a => a.tokens.total)
      }
      return {
        output: {
          timestamp: new Date().toISOString(),
          totals: { calls: sum(a => a.calls), errors: sum(a => a.errors), tokens, costUsd: sum(a => a.costUsd) },
          agents
        }
      }
    }
  })

  const ClearInput = Type.Object({
    agent: Type.Enum(names, { description: 'The agent whose cached responses are deleted' }),
    pattern: Type.Optional(Type.String({
      minLength: 1,
      maxLength: 200,
      description: "Glob on the method/key part inside the agent's namespace; all its entries when absent"
    }))
  }, { additionalProperties: false })
  tools.push({
    name: 'cache_clear',
    title: 'Clear an agent\'s response cache',
    description: 'Deletes cached responses of one agent (as POST /api/agents/{agent}/cache/clear)',
    permission: 'cache:manage',
    inputSchema: selfContained(ClearInput),
    outputSchema: selfContained(CacheClearSchema),
    annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
    async call (args, ctx) {
      const input = validateInput(ClearInput, args)
      await limited(ctx, adminRules())
      const definition = findAgent(app.agents.definitions, String(input.agent))
      if (!definition) throw unknownAgent(String(input.agent), names) // the schema's enum already refused it
      const agent = definition.name
      const pattern = stringFieldOf(input, 'pattern')
      const outcome = cachePattern(pattern, { agent, methods: Object.keys(definition.methods), agents: names })
      if (!outcome.ok) throw new BadRequestError(outcome.message)
      const deleted = await app.agents.cache.clear(agent, outcome.pattern)
      return { output: { success: true, agent, pattern: outcome.pattern, deleted } }
    }
  })
  return tools
}

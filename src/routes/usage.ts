// Usage from the usage ledger (DESIGN §4.6): GET /api/usage/me (own tokens, cost and remaining daily
// budget, by agent, model and day) and GET /api/usage (agent:stats: every caller, by caller, agent,
// model and day). Thin: validate, dispatch to src/limits/usage-report.ts.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { ValidationError, withDetails } from '../errors.js'
import { ref } from '../schemas/common.js'
import { UsageMeSchema, UsageReportSchema } from '../schemas/usage.js'
import { usagePeriod, usageReport } from '../limits/usage-report.js'
import { utcDay } from '../limits/budgets.js'
import { callerOf, callerSecurity as security } from './toolkit.js'

const Period = {
  from: Type.Optional(
    Type.String({
      description: 'ISO date (UTC day, inclusive) or date-time; default: 30 days before `to`',
      examples: ['2025-01-01']
    })
  ),
  to: Type.Optional(
    Type.String({
      description: 'ISO date (UTC day, inclusive) or date-time (exclusive); default: end of today',
      examples: ['2025-01-31']
    })
  )
}

function period (from: string | undefined, to: string | undefined) {
  const result = usagePeriod(from, to)
  if ('field' in result) throw withDetails(new ValidationError(`${result.field} ${result.message}`), [result])
  return result
}

const routes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/me', {
    config: { permission: 'agent:read' },
    schema: {
      operationId: 'getMyUsage',
      tags: ['metrics'],
      summary: 'Your own LLM usage: tokens, cost and remaining daily budget, by agent, model and day',
      security,
      querystring: Type.Object(Period, { additionalProperties: false }),
      response: { 200: ref(UsageMeSchema) }
    }
  }, async (request) => {
    const caller = callerOf(request)
    const { from, to } = period(request.query.from, request.query.to)
    const today = utcDay(Date.now())
    await app.usageLedger.settled() // USAGE_WRITE_MODE=behind: this replica's rows are in first
    const [report, todayReport, limits] = await Promise.all([
      usageReport(app.db, { from, to, callerId: caller.id, limit: 0 }),
      usageReport(app.db, { from: today.start, to: today.resetsAt, callerId: caller.id, limit: 0 }),
      app.hasDecorator('budgets') ? app.budgets.limitsFor(caller) : null
    ])
    const line = (limit: number | null, used: number) =>
      limit === null ? null : { limit, used, remaining: Math.max(0, Math.round((limit - used) * 1e8) / 1e8) }
    return {
      callerId: caller.id,
      role: caller.role,
      period: { from: from.toISOString(), to: to.toISOString() },
      totals: report.totals,
      today: { day: today.day, ...todayReport.totals },
      budget: limits
        ? {
            tokens: line(limits.tokens, todayReport.totals.totalTokens),
            usd: line(limits.usd, todayReport.totals.costUsd),
            resetsAt: today.resetsAt.toISOString()
          }
        : null,
      byAgent: report.byAgent,
      byModel: report.byModel,
      byDay: report.byDay
    }
  })

  app.get(
    '/',
    {
      config: { permission: 'agent:stats' },
      schema: {
        operationId: 'getUsage',
        tags: ['metrics'],
        summary: 'LLM usage of every caller, by caller, agent, model and day',
        security,
        querystring: Type.Object(
          {
            ...Period,
            caller: Type.Optional(
              Type.String({
                minLength: 1,
                maxLength: 200,
                description: 'Only this caller id (e.g. key:<uuid>, user:<uuid>)'
              })
            ),
            limit: Type.Integer({
              minimum: 0,
              maximum: 10_000,
              default: 1000,
              description: 'Most detail rows returned'
            })
          },
          { additionalProperties: false }
        ),
        response: { 200: ref(UsageReportSchema) }
      }
    },
    async request => {
      const { from, to } = period(request.query.from, request.query.to)
      await app.usageLedger.settled() // USAGE_WRITE_MODE=behind: this replica's rows are in first
      const report = await usageReport(app.db, { from, to, callerId: request.query.caller, limit: request.query.limit })
      return { period: { from: from.toISOString(), to: to.toISOString() }, ...report }
    }
  )
}

export default routes

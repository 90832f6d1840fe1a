// TypeBox schemas of the usage routes' responses (GET /api/usage/me, GET /api/usage), registered as
// named components by the schema registry (src/schemas/index.ts).
import { Type, type TSchema } from 'typebox'
import { ref } from './common.js'

const figures = {
  calls: Type.Integer({ description: 'LLM provider calls (successful, failed and cancelled)' }),
  inputTokens: Type.Integer(),
  outputTokens: Type.Integer(),
  totalTokens: Type.Integer(),
  costUsd: Type.Number({ description: 'US dollars, from the price table' })
}
export const UsageFiguresSchema = Type.Object(figures, { $id: 'UsageFigures', additionalProperties: false })
export const UsagePeriodSchema = Type.Object({
  from: Type.String({ format: 'date-time', description: 'Inclusive' }),
  to: Type.String({ format: 'date-time', description: 'Exclusive' })
}, { $id: 'UsagePeriod', additionalProperties: false })
export const BudgetLineSchema = Type.Object(
  {
    limit: Type.Number(),
    used: Type.Number({ description: 'Used today (UTC), from the ledger' }),
    remaining: Type.Number()
  },
  { $id: 'BudgetLine', additionalProperties: false }
)

const by = <K extends string>(key: K, schema: TSchema) =>
  Type.Array(Type.Object({ [key]: schema, ...figures } as Record<K, TSchema> & typeof figures))
const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()])

export const UsageMeSchema = Type.Object({
  callerId: Type.String(),
  role: Type.String(),
  period: ref(UsagePeriodSchema),
  totals: ref(UsageFiguresSchema),
  today: Type.Object({ day: Type.String({ format: 'date' }), ...figures }),
  budget: Nullable(Type.Object({
    tokens: Nullable(ref(BudgetLineSchema)),
    usd: Nullable(ref(BudgetLineSchema)),
    resetsAt: Type.String({ format: 'date-time', description: 'Next UTC midnight' })
  }, { description: 'Daily budget (role or key); null when none applies' })),
  byAgent: by('agent', Type.String()),
  byModel: by('model', Type.String()),
  byDay: by('day', Type.String({ format: 'date' }))
}, { $id: 'UsageMe', additionalProperties: false })

export const UsageReportSchema = Type.Object(
  {
    period: ref(UsagePeriodSchema),
    totals: ref(UsageFiguresSchema),
    byCaller: by('callerId', Type.String()),
    byAgent: by('agent', Type.String()),
    byModel: by('model', Type.String()),
    byDay: by('day', Type.String({ format: 'date' })),
    rows: Type.Array(
      Type.Object({
        callerId: Type.String(),
        agent: Type.String(),
        model: Type.String(),
        day: Type.String({ format: 'date' }),
        ...figures
      }),
      { description: 'One row per caller, agent, model and day, newest day first' }
    ),
    truncated: Type.Boolean({ description: 'More rows matched than `limit`' })
  },
  { $id: 'UsageReport', additionalProperties: false }
)

/** Components of the usage routes, dependencies first. */
export const usageSchemas = [UsageFiguresSchema, UsagePeriodSchema, BudgetLineSchema, UsageMeSchema, UsageReportSchema]

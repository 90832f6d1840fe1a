// Predefined workflows (DESIGN §9): named, server-defined specs built from a validated input. They run
// through the same engine, checks and references as client-sent workflows.
import { Type, type StaticEncode, type TObject, type TSchema } from 'typebox'
import { Compile, type Validator } from 'typebox/compile'
import { Value } from 'typebox/value'
import { ValidationError, withDetails } from '../errors.js'
import { TONES } from '../agents/content/blog.js'
import { PLATFORMS } from '../agents/content/social.js'
import { BUDGET_LEVELS } from '../agents/innovation/ideas.js'
import { problemsOf } from '../agents/validate.js'
import type { AggregatorName, FieldProblem, StepRole, WorkflowSpec } from './types.js'

interface StepDoc { id: string, role: StepRole, agent: string, method: string, description: string }

export interface PredefinedWorkflow {
  name: string
  description: string
  strategy: WorkflowSpec['strategy']
  aggregator?: AggregatorName
  /** The input's JSON Schema as published: a field with a default is not required. */
  input: TSchema
  /** Former field names still accepted, mapped to the current ones (used only when the new name is absent). */
  aliases?: Record<string, string>
  steps: StepDoc[]
  /** The spec from a raw input (aliases renamed, defaults applied); a 400 listing every bad field. */
  prepare(input: unknown): WorkflowSpec
}

type WorkflowInput<T extends TObject> = StaticEncode<T>

interface WorkflowDefinition<T extends TObject> extends Omit<PredefinedWorkflow, 'input' | 'prepare'> {
  /** The schema that fills in defaults and checks the input (every field required once defaulted). */
  input: T
  refine?(input: WorkflowInput<T>): FieldProblem[]
  build(input: WorkflowInput<T>): WorkflowSpec
}

/** A predefined workflow whose `refine` and `build` receive the checked input, typed by its schema. */
function defineWorkflow<T extends TObject> (definition: WorkflowDefinition<T>): PredefinedWorkflow {
  const { input: check, refine, build, ...described } = definition
  let compiled: Validator<{}, T> | undefined
  return {
    ...described,
    input: defaultsOptional(check),
    prepare (input) {
      const value = Value.Default(check, renamed(structuredClone(input ?? {}), definition.aliases))
      let problems: FieldProblem[]
      if ((compiled ??= Compile<T, Validator<{}, T>>(check)).Check(value)) {
        problems = refine?.(value) ?? []
        if (problems.length === 0) return build(value)
      } else {
        problems = problemsOf(check, value, 'input')
      }
      throw withDetails(new ValidationError(problems.map(p => `${p.field} ${p.message}`).join('; ')), problems)
    }
  }
}

const Str = (min: number, max: number, description: string, extra: object = {}) =>
  Type.String({ minLength: min, maxLength: max, description, ...extra })
const Tone = Type.Enum([...TONES], { default: 'engaging', description: 'Voice of the content' })
const Platforms = Type.Array(Type.Enum([...PLATFORMS]), {
  minItems: 1,
  maxItems: 6,
  uniqueItems: true,
  default: ['twitter', 'instagram', 'linkedin']
})
const Interests = Type.Array(Type.String({ minLength: 1, maxLength: 50 }), { maxItems: 10, default: [] })
const Travelers = Type.Integer({ minimum: 1, maximum: 9, default: 1 })

/**
 * The schema as published: a field with a default is not required (the default fills it in before the
 * check), so generated clients and form builders do not demand it.
 */
function defaultsOptional<T extends TObject> (schema: T): T {
  const required = (schema.required ?? []).filter(key => !('default' in schema.properties[key]))
  return { ...schema, required }
}

// `from` and `date` are the travel agent's names (searchFlights); `origin`/`departureDate`, the names of
// the first release, are still accepted (see `aliases`).
const TripPackageInput = Type.Object(
  {
    from: Str(2, 100, 'Departure city or airport (formerly `origin`, still accepted)', { examples: ['New York'] }),
    destination: Str(2, 100, 'Destination city', { examples: ['Paris'] }),
    date: Type.String({
      format: 'date',
      description: 'Outbound date, YYYY-MM-DD (formerly `departureDate`, still accepted)'
    }),
    returnDate: Type.String({ format: 'date', description: 'Return date, 1–21 days after departure' }),
    travelers: Travelers,
    cabinClass: Type.Enum(['economy', 'premium_economy', 'business', 'first'], { default: 'economy' }),
    rooms: Type.Integer({ minimum: 1, maximum: 10, default: 1 }),
    interests: Interests,
    budget: Type.Optional(Type.Number({ minimum: 0, maximum: 1_000_000, description: 'Total budget in USD' }))
  },
  { additionalProperties: false }
)

const TripCampaignInput = Type.Object({
  destination: Str(2, 100, 'Destination', { examples: ['Cairo'] }),
  duration: Type.Integer({ minimum: 1, maximum: 21, description: 'Days' }),
  interests: Interests,
  budget: Type.Optional(Type.Number({ minimum: 0, maximum: 1_000_000, description: 'Total budget in USD' })),
  travelers: Travelers,
  tone: Tone,
  platforms: Platforms,
  postCount: Type.Integer({ minimum: 1, maximum: 20, default: 5 }),
  targetAudience: Str(2, 200, 'Who reads the content', { default: 'travellers' })
}, { additionalProperties: false })

const LaunchPlanInput = Type.Object({
  industry: Str(2, 100, 'Industry or market', { examples: ['travel'] }),
  problem: Type.Optional(Str(3, 500, 'Problem to solve')),
  target: Str(2, 200, 'Target customers', { examples: ['small travel agencies'], default: 'startups' }),
  budgetLevel: Type.Enum([...BUDGET_LEVELS], { default: 'low' }),
  budgetUsd: Type.Optional(Type.Number({ minimum: 0, maximum: 100_000_000 })),
  timelineMonths: Type.Integer({ minimum: 1, maximum: 60, default: 6 }),
  tone: Tone,
  platforms: Platforms
}, { additionalProperties: false })

const DAY_MS = 86_400_000
const days = (from: string, to: string) => Math.round((Date.parse(to) - Date.parse(from)) / DAY_MS)
const optional = (key: string, value: unknown) => value === undefined ? {} : { [key]: value }

export const WORKFLOWS: Record<string, PredefinedWorkflow> = {
  'trip-package': defineWorkflow({
    name: 'trip-package',
    description: 'Flights, hotels and a day-by-day itinerary for one trip, searched in parallel',
    strategy: 'parallel',
    input: TripPackageInput,
    aliases: { origin: 'from', departureDate: 'date' },
    steps: [
      {
        id: 'flights',
        role: 'task',
        agent: 'travel',
        method: 'searchFlights',
        description: 'Outbound flights from → destination on the date'
      },
      {
        id: 'hotels',
        role: 'task',
        agent: 'travel',
        method: 'searchHotels',
        description: 'Hotels at the destination from date to returnDate'
      },
      {
        id: 'itinerary',
        role: 'task',
        agent: 'travel',
        method: 'generateItinerary',
        description: 'An itinerary for the nights between the two dates'
      }
    ],
    refine (input) {
      const nights = days(input.date, input.returnDate)
      return nights >= 1 && nights <= 21
        ? []
        : [{ field: 'input.returnDate', message: 'must be 1 to 21 days after date' }]
    },
    build (i) {
      return {
        strategy: 'parallel',
        input: i,
        tasks: [
          {
            id: 'flights',
            agent: 'travel',
            method: 'searchFlights',
            input: { from: i.from, to: i.destination, date: i.date, passengers: i.travelers, class: i.cabinClass }
          },
          {
            id: 'hotels',
            agent: 'travel',
            method: 'searchHotels',
            input: {
              destination: i.destination,
              checkin: i.date,
              checkout: i.returnDate,
              guests: i.travelers,
              rooms: i.rooms
            }
          },
          {
            id: 'itinerary',
            agent: 'travel',
            method: 'generateItinerary',
            input: {
              destination: i.destination,
              duration: days(i.date, i.returnDate),
              interests: i.interests,
              travelers: i.travelers,
              ...optional('budget', i.budget)
            }
          }
        ]
      }
    }
  }),
  'trip-campaign': defineWorkflow({
    name: 'trip-campaign',
    description: 'An itinerary, then a blog post written from it, then social posts promoting the post',
    strategy: 'sequential',
    input: TripCampaignInput,
    steps: [
      {
        id: 'itinerary',
        role: 'step',
        agent: 'travel',
        method: 'generateItinerary',
        description: 'The trip, day by day'
      },
      {
        id: 'blog',
        role: 'step',
        agent: 'content',
        method: 'generateBlogPost',
        description: 'A travel guide written with the itinerary as context'
      },
      {
        id: 'social',
        role: 'step',
        agent: 'content',
        method: 'generateSocialPosts',
        description: "Posts on the blog post's headline (steps.blog.data.headline), with the post as context"
      }
    ],
    build (i) {
      return {
        strategy: 'sequential',
        onError: 'stop',
        input: i,
        steps: [
          {
            id: 'itinerary',
            agent: 'travel',
            method: 'generateItinerary',
            input: {
              destination: i.destination,
              duration: i.duration,
              interests: i.interests,
              travelers: i.travelers,
              ...optional('budget', i.budget)
            }
          },
          {
            id: 'blog',
            agent: 'content',
            method: 'generateBlogPost',
            input: {
              topic: `${i.duration} days in ${i.destination}: a travel guide`,
              type: 'guide',
              tone: i.tone,
              keywords: [i.destination, ...i.interests].slice(0, 10),
              targetAudience: i.targetAudience
            }
          },
          {
            id: 'social',
            agent: 'content',
            method: 'generateSocialPosts',
            input: {
              topic: { $ref: 'steps.blog.data.headline' },
              platforms: i.platforms,
              tone: i.tone,
              count: i.postCount
            }
          }
        ]
      }
    }
  }),
  'launch-plan': defineWorkflow({
    name: 'launch-plan',
    description:
      'Business ideas first; then, in parallel, a validation of the top idea, ' +
      'a launch blog post and social posts about it',
    strategy: 'hierarchical',
    aggregator: 'master-summary',
    input: LaunchPlanInput,
    steps: [
      {
        id: 'ideas',
        role: 'master',
        agent: 'innovation',
        method: 'generateIdeas',
        description: 'Three ideas for the industry, problem and target'
      },
      {
        id: 'validation',
        role: 'sub-agent',
        agent: 'innovation',
        method: 'validateIdea',
        description: 'Validates the top idea (steps.ideas.data.ideas.0.description)'
      },
      {
        id: 'blog',
        role: 'sub-agent',
        agent: 'content',
        method: 'generateBlogPost',
        description: "A launch post on the top idea's title"
      },
      {
        id: 'social',
        role: 'sub-agent',
        agent: 'content',
        method: 'generateSocialPosts',
        description: "Launch posts on the top idea's title"
      }
    ],
    build (i) {
      const topIdea = { $ref: 'steps.ideas.data.ideas.0.title' }
      return {
        strategy: 'hierarchical',
        aggregator: 'master-summary',
        input: i,
        master: {
          id: 'ideas',
          agent: 'innovation',
          method: 'generateIdeas',
          input: {
            industry: i.industry,
            target: i.target,
            count: 3,
            budget: i.budgetLevel,
            ...optional('problem', i.problem)
          }
        },
        subAgents: [
          {
            id: 'validation',
            agent: 'innovation',
            method: 'validateIdea',
            input: {
              idea: { $ref: 'steps.ideas.data.ideas.0.description' },
              targetMarket: i.target,
              timeline: i.timelineMonths,
              ...optional('budget', i.budgetUsd)
            }
          },
          {
            id: 'blog',
            agent: 'content',
            method: 'generateBlogPost',
            input: { topic: topIdea, type: 'news', tone: i.tone, keywords: [i.industry], targetAudience: i.target }
          },
          {
            id: 'social',
            agent: 'content',
            method: 'generateSocialPosts',
            input: { topic: topIdea, platforms: i.platforms, tone: i.tone }
          }
        ]
      }
    }
  })
}

export const WORKFLOW_NAMES = Object.keys(WORKFLOWS)

/** Former field names moved to the current ones, unless the current name is also given (then it is left to fail). */
function renamed (input: unknown, aliases: Record<string, string> = {}): unknown {
  if (!input || typeof input !== 'object' || Array.isArray(input)) return input
  const value: Record<string, unknown> = { ...input }
  for (const [old, current] of Object.entries(aliases)) {
    if (Object.hasOwn(value, old) && !Object.hasOwn(value, current)) {
      value[current] = value[old]
      delete value[old]
    }
  }
  return value
}

/** The spec of a predefined workflow from its input (defaults applied); 400 listing every bad field. */
export function prepareWorkflow (name: string, input: unknown): WorkflowSpec {
  if (!Object.hasOwn(WORKFLOWS, name)) {
    throw withDetails(new ValidationError(`workflowName must be one of: ${WORKFLOW_NAMES.join(', ')}`), [
      { field: 'workflowName', message: `must be one of: ${WORKFLOW_NAMES.join(', ')}` }
    ])
  }
  return WORKFLOWS[name].prepare(input)
}

// TypeBox schemas of the coordinator's HTTP surface (DESIGN §4.5, §9): the three workflow bodies, the
// predefined-workflow body, runs and step results, the SSE events, the catalog and the statistics.
// Shared components carry an $id (registered by index.ts) and show under their names in OpenAPI.
import { Type, type Static, type TSchemaOptions } from 'typebox'
import { AGGREGATOR_NAMES } from '../coordinator/aggregators.js'
import { LIMITS } from '../coordinator/plan.js'
import { WORKFLOW_NAMES } from '../coordinator/workflows.js'
import { ref } from './common.js'

const literals = <T extends string>(values: readonly T[], options: TSchemaOptions = {}) =>
  Type.Enum([...values], options)

export const RefDocs =
  'Any value may be a data reference `{ "$ref": "input.destination" }`, ' +
  '`{ "$ref": "steps.0.data.days" }` (a step index or id) or `{ "$ref": "previous.data" }`: ' +
  'a dotted path into `{ input, steps, previous }`, resolved by own properties only — data, never code'

export const WorkflowStepSchema = Type.Object(
  {
    id: Type.Optional(
      Type.String({
        pattern: '^[A-Za-z][A-Za-z0-9_-]{0,63}$',
        description: 'Names the step for references (`steps.<id>.data`) and keys its result'
      })
    ),
    agent: Type.String({
      minLength: 1,
      maxLength: 64,
      description: 'travel, content or innovation (GET /api/coordinator/agents)'
    }),
    method: Type.String({ minLength: 1, maxLength: 64, description: 'A method of the agent' }),
    input: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), {
        description: `The method's input (default: the workflow input). ${RefDocs}`
      })
    )
  },
  { $id: 'WorkflowStep', additionalProperties: false }
)

const WorkflowInput = Type.Optional(
  Type.Record(Type.String(), Type.Unknown(), { description: 'Data the steps reference as `input.…`' })
)
const TimeoutMs = Type.Optional(
  Type.Integer({
    minimum: 100,
    maximum: 600_000,
    description: 'Per-step timeout in ms; the provider call is aborted when it passes'
  })
)
const Concurrency = Type.Optional(
  Type.Integer({
    minimum: 1,
    maximum: LIMITS.parallelTasks,
    description: `Parallel calls at once (default ${LIMITS.parallelTasks})`
  })
)

export const SequentialBodySchema = Type.Object(
  {
    steps: Type.Array(ref(WorkflowStepSchema), { minItems: 1, maxItems: LIMITS.steps }),
    input: WorkflowInput,
    onError: Type.Optional(
      literals(['stop', 'continue'] as const, {
        default: 'stop',
        description: 'stop: skip the remaining steps after a failure; continue: run them'
      })
    ),
    timeoutMs: TimeoutMs
  },
  {
    $id: 'SequentialWorkflowRequest',
    additionalProperties: false,
    description: "Steps run in order; each receives the previous step's data as `context` unless its input sets one"
  }
)

export const ParallelBodySchema = Type.Object(
  {
    tasks: Type.Array(ref(WorkflowStepSchema), { minItems: 1, maxItems: LIMITS.parallelTasks }),
    input: WorkflowInput,
    concurrency: Concurrency,
    timeoutMs: TimeoutMs
  },
  {
    $id: 'ParallelWorkflowRequest',
    additionalProperties: false,
    description: 'Tasks run at once and all settle; tasks may reference `input.…` only'
  }
)

export const HierarchicalBodySchema = Type.Object(
  {
    master: ref(WorkflowStepSchema),
    subAgents: Type.Array(ref(WorkflowStepSchema), { minItems: 1, maxItems: LIMITS.parallelTasks }),
    input: WorkflowInput,
    aggregator: Type.Optional(
      literals(AGGREGATOR_NAMES, {
        default: 'collect',
        description: `Named aggregator: ${AGGREGATOR_NAMES.join(', ')}`
      })
    ),
    concurrency: Concurrency,
    timeoutMs: TimeoutMs
  },
  {
    $id: 'HierarchicalWorkflowRequest',
    additionalProperties: false,
    description:
      "The master runs first; its data is each sub-agent's `context`; " +
      'sub-agents run in parallel; a named aggregator combines them'
  }
)

export const WorkflowBodySchema = (names: readonly string[]) => Type.Object({
  workflowName: literals(names, { description: 'A predefined workflow (GET /api/coordinator/workflows)' }),
  input: Type.Record(Type.String(), Type.Unknown(), { description: 'Validated against the workflow\'s input schema' })
}, { $id: 'PredefinedWorkflowRequest', additionalProperties: false })

const Usage = Type.Object({
  inputTokens: Type.Integer(),
  outputTokens: Type.Integer(),
  costUsd: Type.Number(),
  model: Type.Optional(Type.String()),
  estimated: Type.Optional(Type.Boolean())
}, { $id: 'WorkflowUsage' })

const StepError = Type.Object({
  code: Type.String({ description: 'AMK_… (AMK_SKIPPED: not run because of an earlier failure)' }),
  message: Type.String(),
  details: Type.Optional(Type.Unknown())
}, { $id: 'WorkflowStepError' })

const StepStatus = literals([
  'pending',
  'running',
  'completed',
  'failed',
  'timed_out',
  'cancelled',
  'skipped',
  'interrupted'
] as const)
const Role = literals(['step', 'task', 'master', 'sub-agent'] as const)

export const StepResultSchema = Type.Object({
  index: Type.Integer({ minimum: 0 }),
  id: Type.Optional(Type.String()),
  role: Role,
  agent: Type.String(),
  method: Type.String(),
  status: StepStatus,
  data: Type.Optional(Type.Unknown({ description: 'The method\'s validated output' })),
  error: Type.Optional(ref(StepError)),
  usage: ref(Usage),
  cached: Type.Boolean(),
  startedAt: Type.Optional(Type.String({ format: 'date-time' })),
  finishedAt: Type.Optional(Type.String({ format: 'date-time' })),
  durationMs: Type.Number(),
  traceId: Type.Optional(Type.String())
}, { $id: 'WorkflowStepResult' })

export const RunSchema = Type.Object(
  {
    runId: Type.String({ format: 'uuid' }),
    traceId: Type.String({ description: 'The run is one trace; every agent call is its child' }),
    strategy: literals(['sequential', 'parallel', 'hierarchical'] as const),
    workflowName: Type.Optional(Type.String()),
    status: literals(['running', 'completed', 'failed', 'cancelled'] as const),
    success: Type.Boolean({ description: 'True when every step completed' }),
    steps: Type.Array(ref(StepResultSchema)),
    result: Type.Unknown({
      description:
        "sequential: the last completed step's data; parallel: data by task id (or index); " +
        "hierarchical: the aggregator's output"
    }),
    error: Type.Optional(ref(StepError)),
    usage: ref(Usage),
    createdAt: Type.String({ format: 'date-time' }),
    startedAt: Type.Optional(Type.String({ format: 'date-time' })),
    finishedAt: Type.Optional(Type.String({ format: 'date-time' })),
    durationMs: Type.Optional(Type.Number()),
    cancelRequested: Type.Boolean()
  },
  { $id: 'WorkflowRun' }
)
export type RunBody = Static<typeof RunSchema>

const StepRefSchema = Type.Object({
  runId: Type.String(),
  index: Type.Integer(),
  id: Type.Optional(Type.String()),
  role: Role,
  agent: Type.String(),
  method: Type.String(),
  path: Type.String({ description: '`<agent>.<method>`' })
})

const frame = (name: string, data: ReturnType<typeof Type.Object> | ReturnType<typeof ref>, description: string) =>
  Type.Object(
    {
      id: Type.String({ description: '`<runId>-<seq>`, seq strictly increasing' }),
      event: Type.Literal(name),
      data
    },
    { description }
  )

export const CoordinatorEventSchema = Type.Union(
  [
    frame(
      'run-started',
      Type.Object({
        runId: Type.String(),
        strategy: Type.String(),
        workflowName: Type.Optional(Type.String()),
        replayed: Type.Boolean(),
        steps: Type.Array(StepRefSchema)
      }),
      'First event'
    ),
    frame(
      'step-started',
      Type.Object({ ...StepRefSchema.properties, startedAt: Type.String({ format: 'date-time' }) }),
      'A step began'
    ),
    frame(
      'token',
      Type.Object({
        runId: Type.String(),
        index: Type.Integer(),
        path: Type.String(),
        chunk: Type.String(),
        seq: Type.Integer()
      }),
      "A piece of a step's model text, with the step's agent path"
    ),
    frame('step-completed', ref(StepResultSchema), 'A step finished with data and usage'),
    frame('step-failed', ref(StepResultSchema), 'A step failed, timed out or was cancelled (with its usage)'),
    frame('complete', ref(RunSchema), "Last event: the whole run; its usage is the sum of the steps' usage")
  ],
  { $id: 'CoordinatorEvent', description: 'One Server-Sent Event of a workflow run' }
)

export const runResponse = {
  description: 'The run (JSON), or with `Accept: text/event-stream` its events',
  content: {
    'application/json': { schema: ref(RunSchema) },
    'text/event-stream': { schema: ref(CoordinatorEventSchema) }
  }
}

export const WorkflowListSchema = Type.Object(
  {
    workflows: Type.Array(
      Type.Object({
        name: Type.String(),
        description: Type.String(),
        strategy: Type.String(),
        aggregator: Type.Optional(Type.String()),
        steps: Type.Array(
          Type.Object({
            id: Type.String(),
            role: Role,
            agent: Type.String(),
            method: Type.String(),
            description: Type.String()
          })
        ),
        inputSchema: Type.Unknown({ description: 'JSON Schema of `input`' })
      })
    ),
    aggregators: Type.Array(Type.Object({ name: Type.String(), description: Type.String() }))
  },
  { $id: 'WorkflowList' }
)

export const CatalogSchema = Type.Object({
  agents: Type.Array(Type.Object({
    name: Type.String(),
    description: Type.String(),
    capabilities: Type.Array(Type.String()),
    methods: Type.Array(Type.Object({ name: Type.String(), summary: Type.String(), inputSchema: Type.Unknown() }))
  })),
  limits: Type.Object({ steps: Type.Integer(), parallelTasks: Type.Integer() })
}, { $id: 'CoordinatorAgents' })

const Counts = Type.Object({
  total: Type.Integer(),
  completed: Type.Integer(),
  failed: Type.Integer(),
  cancelled: Type.Integer(),
  running: Type.Integer()
})

export const StatsSchema = Type.Object(
  {
    since: Type.String({ format: 'date-time', description: 'Last reset' }),
    total: Type.Integer(),
    completed: Type.Integer(),
    failed: Type.Integer(),
    cancelled: Type.Integer(),
    active: Type.Integer({ description: 'Running now on any replica' }),
    byStrategy: Type.Record(Type.String(), Counts),
    averageDurationMs: Type.Union([Type.Number(), Type.Null()]),
    agents: Type.Record(
      Type.String(),
      Type.Object({
        calls: Type.Integer(),
        succeeded: Type.Integer(),
        failed: Type.Integer(),
        successRate: Type.Number()
      })
    )
  },
  { $id: 'CoordinatorStats' }
)

/** The body of POST /api/coordinator/workflow: `workflowName` lists the predefined workflows. */
export const PredefinedWorkflowBodySchema = WorkflowBodySchema(WORKFLOW_NAMES)

export const coordinatorSchemas = [
  WorkflowStepSchema,
  Usage,
  StepError,
  StepResultSchema,
  RunSchema,
  CoordinatorEventSchema,
  SequentialBodySchema,
  ParallelBodySchema,
  HierarchicalBodySchema,
  WorkflowListSchema,
  CatalogSchema,
  StatsSchema,
  PredefinedWorkflowBodySchema
]

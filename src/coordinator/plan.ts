// Up-front checks of a workflow, before anything runs or is stored: every agent and method exists,
// every reference is a well-formed data path to something that will exist (an earlier step, the
// workflow input), and every step whose input depends on the workflow input only is validated against
// its method's input schema now. Problems come back together as one 400 listing each field.
// Steps that reference earlier steps' data are validated when they are about to run.
import { ValidationError, withDetails } from '../errors.js'
import { AGGREGATOR_NAMES, DEFAULT_AGGREGATOR, isAggregatorName } from './aggregators.js'
import { collectRefs, lookup, problemOf, resolveTemplate, type ParsedRef } from './refs.js'
import type {
  AggregatorName,
  Catalog,
  FieldProblem,
  JsonObject,
  StepRole,
  StepSpec,
  Strategy,
  WorkflowSpec
} from './types.js'

export interface PlannedStep {
  index: number
  id?: string
  role: StepRole
  agent: string
  method: string
  /** Where the step sits in the request body, for error fields. */
  field: string
  /** The step's input template (the workflow input when the step has none). */
  template: unknown
  /** The resolved, validated input when it depends on the workflow input only. */
  resolved?: JsonObject
}

export interface Plan {
  strategy: Strategy
  steps: PlannedStep[]
  input: JsonObject
  onError: 'stop' | 'continue'
  concurrency: number
  timeoutMs?: number
  aggregator: AggregatorName
}

export const LIMITS = { steps: 20, parallelTasks: 10 } as const
const ID = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/

function stepsOf (spec: WorkflowSpec): Array<{ step: StepSpec, role: StepRole, field: string }> {
  if (spec.strategy === 'sequential') {
    return spec.steps.map((step, i) => ({ step, role: 'step' as const, field: `steps.${i}` }))
  }
  if (spec.strategy === 'parallel') {
    return spec.tasks.map((step, i) => ({ step, role: 'task' as const, field: `tasks.${i}` }))
  }
  return [{ step: spec.master, role: 'master' as const, field: 'master' },
    ...spec.subAgents.map((step, i) => ({ step, role: 'sub-agent' as const, field: `subAgents.${i}` }))]
}

/** Which earlier steps a step may reference: sequential steps see all earlier ones, sub-agents see the master. */
function visibleSteps (role: StepRole, index: number): number {
  if (role === 'step') return index
  if (role === 'sub-agent') return 1
  return 0
}

export function planWorkflow (spec: WorkflowSpec, catalog: Catalog): Plan {
  const problems: FieldProblem[] = []
  const input = spec.input ?? {}
  const entries = stepsOf(spec)
  const ids = new Map<string, number>()
  const tasks =
    spec.strategy === 'parallel' ? spec.tasks.length : spec.strategy === 'hierarchical' ? spec.subAgents.length : 0
  if (entries.length > LIMITS.steps) problems.push({ field: 'steps', message: `at most ${LIMITS.steps} steps` })
  if (tasks > LIMITS.parallelTasks) {
    problems.push({
      field: spec.strategy === 'parallel' ? 'tasks' : 'subAgents',
      message: `at most ${LIMITS.parallelTasks} parallel tasks`
    })
  }
  if (spec.strategy === 'hierarchical' && spec.aggregator !== undefined && !isAggregatorName(spec.aggregator)) {
    problems.push({ field: 'aggregator', message: `unknown aggregator; valid: ${AGGREGATOR_NAMES.join(', ')}` })
  }
  const available = catalog.methods()

  const steps = entries.map(({ step, role, field }, index): PlannedStep => {
    const planned: PlannedStep = {
      index,
      role,
      agent: step.agent,
      method: step.method,
      field,
      template: step.input ?? input
    }
    if (step.id !== undefined) {
      planned.id = step.id
      if (!ID.test(step.id)) {
        problems.push({ field: `${field}.id`, message: 'must start with a letter (letters, digits, _ and -)' })
      } else if (ids.has(step.id)) {
        problems.push({ field: `${field}.id`, message: `duplicates the id of step ${ids.get(step.id)}` })
      } else ids.set(step.id, index)
    }
    if (!Object.hasOwn(available, step.agent)) {
      problems.push({
        field: `${field}.agent`,
        message: `unknown agent "${step.agent}"; available: ${Object.keys(available).join(', ')}`
      })
      return planned
    }
    if (!available[step.agent].includes(step.method)) {
      problems.push({
        field: `${field}.method`,
        message: `unknown method "${step.method}" of ${step.agent}; available: ${available[step.agent].join(', ')}`
      })
      return planned
    }
    const inputField = step.input === undefined ? 'input' : `${field}.input`
    let runtime = false
    const before = problems.length
    try {
      for (const { ref, field: at } of collectRefs(planned.template, inputField)) {
        const problem = checkRef(ref, role, index, ids)
        if (problem) problems.push({ field: at, message: problem })
        else if (ref.root === 'input' && lookup(input, ref.segments) === undefined) {
          problems.push({ field: at, message: `reference "${ref.text}" names nothing in the workflow input` })
        } else if (ref.root !== 'input') runtime = true
      }
      if (runtime || problems.length > before) return planned
      const resolved = resolveTemplate(planned.template, ref => lookup(input, ref.segments), inputField)
      const invalid = catalog.validate(step.agent, step.method, resolved) ?? []
      for (const p of invalid) {
        problems.push({ field: [inputField, p.field].filter(Boolean).join('.'), message: p.message })
      }
      if (invalid.length === 0) planned.resolved = resolved as JsonObject
    } catch (error) {
      const problem = problemOf(error)
      if (!problem) throw error
      problems.push(problem)
    }
    return planned
  })

  if (problems.length > 0) {
    throw withDetails(new ValidationError(problems.map(p => `${p.field} ${p.message}`).join('; ')), problems)
  }
  return {
    strategy: spec.strategy,
    steps,
    input,
    onError: spec.strategy === 'sequential' ? (spec.onError ?? 'stop') : 'continue',
    concurrency:
      spec.strategy === 'sequential'
        ? 1
        : Math.max(1, Math.min(spec.concurrency ?? LIMITS.parallelTasks, LIMITS.parallelTasks)),
    timeoutMs: spec.timeoutMs,
    aggregator:
      spec.strategy === 'hierarchical' && isAggregatorName(spec.aggregator) ? spec.aggregator : DEFAULT_AGGREGATOR
  }
}

/** Null when the reference may be used by this step; else why not. */
function checkRef (ref: ParsedRef, role: StepRole, index: number, ids: Map<string, number>): string | null {
  if (ref.root === 'input') return null
  const visible = visibleSteps(role, index)
  if (visible === 0) {
    return `reference "${ref.text}": this step runs first or in parallel, so only "input." paths are available`
  }
  if (ref.root === 'previous') return null
  const [name] = ref.segments
  if (name === undefined) return `reference "${ref.text}" must name a step: steps.<index or id>.data…`
  const target = /^\d+$/.test(name) ? Number(name) : ids.get(name)
  if (target === undefined) return `reference "${ref.text}" names no earlier step`
  if (target >= visible) {
    const earlier = role === 'sub-agent' ? 'sub-agents see the master, steps.0' : `steps.0 to steps.${visible - 1}`
    return `reference "${ref.text}" must name an earlier step (${earlier})`
  }
  return null
}

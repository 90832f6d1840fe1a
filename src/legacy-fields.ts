// Hints for request bodies written for the Express service: a 400 that names a field of its shape
// (`params`, `queries`, a string `master`, a word `length`) also names this service's field. Used by the validation
// error path (src/plugins/error-handler.ts); docs/migration.md lists every body change.

/** Fields the Express service accepted that are not allowed here, by their last path segment. */
const RENAMED: Readonly<Record<string, string>> = {
  params: 'the Express service\'s `params` is `input` here',
  queries: 'the Express service\'s `queries` is `requests` here: [{ "method": "<method>", "input": { … } }]',
  days: 'the Express service\'s itinerary `days` is `duration` here'
}

/** Coordinator fields that took an agent name in the Express guide and take a step object here. */
const STEP_OBJECT = /^body\.(master|subAgents\.\d+)$/
const STEP_HINT =
  'a step object { "agent": "<agent>", "method": "<method>", "input": { … } } ' +
  "(the Express guide's agent-name string is not accepted)"

/** Fields that kept their name but changed type. */
const RETYPED: Readonly<Record<string, string>> = {
  'body.length': 'a target length in words (300–4000); the Express guide\'s short, medium and long are not accepted'
}

/** The message of one validation problem, with the new field named when the field is the Express service's. */
export function withLegacyHint (field: string, keyword: string, message: string): string {
  const last = field.split('.').at(-1) ?? ''
  if (keyword === 'additionalProperties' && Object.hasOwn(RENAMED, last)) return `${message}: ${RENAMED[last]}`
  if (keyword === 'additionalProperties' && last === 'name' && STEP_OBJECT.test(field.slice(0, -'.name'.length))) {
    return `${message}: the Express service's step \`name\` is \`agent\` here`
  }
  if (keyword === 'type' && STEP_OBJECT.test(field)) return `${message}: ${STEP_HINT}`
  if (keyword === 'type' && Object.hasOwn(RETYPED, field)) return `${message}: ${RETYPED[field]}`
  return message
}

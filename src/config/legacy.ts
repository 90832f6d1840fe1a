// Environment variables of the original Express service that this service does not read under that
// name. None is ignored silently: each is refused at boot with a message naming the variable to set
// instead (anything that decides where data or limits go), honoured under its new name with a warning,
// or reported as unused with a warning. docs/migration.md documents the same table.
export type LegacyDecision = 'refused' | 'honoured' | 'unused'

export interface LegacyVariable {
  name: string
  decision: LegacyDecision
  /** The variable to use instead, or (unused ones) what this service does instead. */
  instead: string
}

export const LEGACY_VARIABLES: readonly LegacyVariable[] = [
  { name: 'REDIS_HOST', decision: 'refused', instead: 'REDIS_URL' },
  { name: 'REDIS_PORT', decision: 'refused', instead: 'REDIS_URL' },
  { name: 'REDIS_PASSWORD', decision: 'refused', instead: 'REDIS_URL' },
  { name: 'REDIS_DB', decision: 'refused', instead: 'REDIS_URL' },
  { name: 'PHASE2_PORT', decision: 'honoured', instead: 'PORT' },
  {
    name: 'SUPABASE_SERVICE_ROLE_KEY',
    decision: 'unused',
    instead:
      'Supabase access tokens are verified with SUPABASE_URL and SUPABASE_ANON_KEY or SUPABASE_JWT_SECRET; ' +
      'nothing is written to Supabase'
  },
  {
    name: 'ENCRYPTION_KEY',
    decision: 'unused',
    instead: 'API keys and passwords are stored as hashes; nothing is encrypted with a key'
  },
  { name: 'DEBUG', decision: 'unused', instead: 'logging is set with LOG_LEVEL (LOG_LEVEL=debug)' },
  { name: 'LANGSMITH_*_SAMPLE_RATE', decision: 'unused', instead: 'LANGSMITH_SAMPLE_RATE samples whole traces' }
]

export interface LegacyOutcome {
  /** New variables set from old ones (only where the new one is unset). */
  values: Record<string, string>
  warnings: string[]
  problems: Array<[string, string]>
}

type Env = Record<string, string | undefined>

const REDIS_PARTS = ['REDIS_HOST', 'REDIS_PORT', 'REDIS_PASSWORD', 'REDIS_DB']
const PER_EVENT_SAMPLE_RATE = /^LANGSMITH_[A-Z0-9_]+_SAMPLE_RATE$/

/** The REDIS_URL the Express service's variables describe; the password is shown as a placeholder. */
function redisUrl (env: Env): string {
  const auth = env.REDIS_PASSWORD ? ':<REDIS_PASSWORD>@' : ''
  const host = env.REDIS_HOST ?? 'localhost'
  return `redis://${auth}${host.includes(':') ? `[${host}]` : host}:${env.REDIS_PORT ?? '6379'}/${env.REDIS_DB ?? '0'}`
}

/** Recognises the Express service's variables in `env` (empty values count as unset, as in loadConfig). */
export function legacyEnvironment (input: Env): LegacyOutcome {
  const env: Env = Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined && v !== ''))
  const outcome: LegacyOutcome = { values: {}, warnings: [], problems: [] }
  const was = (name: string) => `${name} is the Express service's variable`

  for (const name of REDIS_PARTS.filter(n => env[n] !== undefined)) {
    const problem = env.REDIS_URL
      ? `${was(name)} and is not read: REDIS_URL is set and alone says where Redis is; ` +
        `fold ${name} into REDIS_URL if it differs, and remove it`
      : `${was(name)}: set REDIS_URL=${redisUrl(env)} instead ` +
        '(without REDIS_URL every limit, cache and stream log stays in this process)'
    outcome.problems.push([name, problem])
  }

  const oldPort = env.PHASE2_PORT
  if (oldPort !== undefined) {
    if (env.PORT === undefined) {
      outcome.values.PORT = oldPort
      outcome.warnings.push(`${was('PHASE2_PORT')}: honoured as PORT=${oldPort} for now; rename it to PORT`)
    } else if (env.PORT === oldPort) {
      outcome.warnings.push(`${was('PHASE2_PORT')}: PORT has the same value and is used; remove PHASE2_PORT`)
    } else {
      outcome.problems.push([
        'PHASE2_PORT',
        `${was('PHASE2_PORT')}: PHASE2_PORT=${oldPort} and PORT=${env.PORT} disagree; set PORT only`
      ])
    }
  }

  for (const variable of LEGACY_VARIABLES.filter(v => v.decision === 'unused')) {
    const names = variable.name.includes('*')
      ? Object.keys(env).filter(name => PER_EVENT_SAMPLE_RATE.test(name))
      : env[variable.name] === undefined ? [] : [variable.name]
    for (const name of names) {
      outcome.warnings.push(`${was(name)} and is not read by this service: ${variable.instead}; remove ${name}`)
    }
  }
  return outcome
}

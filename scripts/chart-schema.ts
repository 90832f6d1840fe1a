// Keeps the Helm chart's values.schema.json in step with ConfigSchema (src/config.ts): `env` and `secretEnv`
// accept only the config variables' names (a typo fails `helm lint`/`helm template`), values may be strings,
// numbers or booleans (`--set env.SHUTDOWN_GRACE_MS=60000` gives a number), and secrets keep their minimum
// length (JWT_SECRET ≥ 32). `npm run chart-schema` rewrites the file (`npm run config-table` runs it too);
// test/deploy/helm-schema.test.ts fails when the file is stale.
import { readFile, writeFile } from 'node:fs/promises'
import { pathToFileURL } from 'node:url'
import { isDeepStrictEqual } from 'node:util'
import { ConfigSchema } from '../src/config.js'

export const SCHEMA_PATH = new URL('../helm/amrikyy-agent/values.schema.json', import.meta.url)

/** Set by the chart itself: HOST (0.0.0.0, for probes) and DATA_DIR (the emptyDir mount). */
const CHART_OWNED = new Set(['HOST', 'DATA_DIR'])

interface VariableSchema { type?: string, minLength?: number }

/** The names `env` and `secretEnv` accept, in ConfigSchema order. */
export function chartEnvNames (): string[] {
  return Object.keys(ConfigSchema.properties).filter(name => !CHART_OWNED.has(name))
}

/** The `env` and `secretEnv` value schemas derived from ConfigSchema. */
export function chartEnvSchemas (): { env: object, secretEnv: object } {
  const names = chartEnvNames()
  const anyValue = { type: ['string', 'number', 'boolean'] }
  const secretMinimums: Record<string, object> = {}
  for (const [name, schema] of Object.entries(ConfigSchema.properties as Record<string, VariableSchema>)) {
    if (schema.type === 'string' && (schema.minLength ?? 0) > 1) secretMinimums[name] = { type: 'string', minLength: schema.minLength }
  }
  return {
    env: {
      description: 'Non-secret environment (ConfigMap). Generated from src/config.ts by scripts/chart-schema.ts.',
      type: 'object',
      propertyNames: { enum: names },
      additionalProperties: anyValue
    },
    secretEnv: {
      description: 'Secret environment (Secret). Generated from src/config.ts by scripts/chart-schema.ts.',
      type: 'object',
      propertyNames: { enum: names },
      properties: secretMinimums,
      additionalProperties: anyValue
    }
  }
}

/** values.schema.json with generated `env` and `secretEnv`, formatted as written. */
export function withGeneratedEnv (current: string): string {
  const schema = JSON.parse(current)
  Object.assign(schema.properties, chartEnvSchemas())
  return JSON.stringify(schema, null, 2) + '\n'
}

/** Whether the file already holds the generated `env` and `secretEnv` (formatting aside). */
export function isFresh (current: string): boolean {
  return isDeepStrictEqual(JSON.parse(withGeneratedEnv(current)), JSON.parse(current))
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const current = await readFile(SCHEMA_PATH, 'utf8')
  const next = withGeneratedEnv(current)
  if (process.argv.includes('--check')) {
    if (!isFresh(current)) {
      process.stderr.write('helm/amrikyy-agent/values.schema.json is stale: run npm run chart-schema\n')
      process.exit(1)
    }
  } else {
    await writeFile(SCHEMA_PATH, next)
    process.stdout.write(`values.schema.json: env and secretEnv accept ${chartEnvNames().length} variables\n`)
  }
}

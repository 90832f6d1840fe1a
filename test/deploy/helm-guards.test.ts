// The chart's guard rails, with a real helm: `helm lint` fails on defaults that cannot install; the grace
// period follows SHUTDOWN_GRACE_MS; env.PORT gives one ConfigMap key; numbers from --set pass the values
// schema; unknown env names and a short JWT_SECRET are refused; values.schema.json is fresh.
import t from 'tap'
import { readFile } from 'node:fs/promises'
import { SCHEMA_PATH, isFresh, withGeneratedEnv } from '../../scripts/chart-schema.js'
import { CHART, helm, render, schemaErrors, type K8sObject } from './helm-tool.js'

const JWT = 'j'.repeat(40)
const SECRETS = [
  '--set',
  `secretEnv.JWT_SECRET=${JWT}`,
  '--set',
  'secretEnv.DATABASE_URL=postgres://db:5432/amk',
  '--set',
  'secretEnv.GEMINI_API_KEY=k'
]

interface PodSpec {
  terminationGracePeriodSeconds: number
  containers: Array<{ lifecycle: { preStop: { exec: { command: string[] } } } }>
}
const podSpec = (objects: K8sObject[]) =>
  (objects.find(o => o.kind === 'Deployment') as unknown as { spec: { template: { spec: PodSpec } } }).spec.template
    .spec
const configData = (objects: K8sObject[]) =>
  (
    objects.find(o => o.kind === 'ConfigMap' && o.metadata.name === 'agents-amrikyy-agent') as unknown as {
      data: Record<string, string>
    }
  ).data
const template = (args: string[]) => helm(['template', 'agents', CHART, ...args])

t.test('helm lint and helm template fail on defaults that cannot install, naming what is missing', async t => {
  const lint = helm(['lint', CHART])
  t.not(lint.status, 0, 'helm lint fails on the defaults')
  for (const name of ['JWT_SECRET', 'DATABASE_URL', 'GEMINI_API_KEY']) { t.match(lint.stdout + lint.stderr, `missing property '${name}'`) }
  t.not(template([]).status, 0, 'and so does helm template')

  t.equal(helm(['lint', CHART, ...SECRETS]).status, 0, 'lint passes with the required secrets')
  t.equal(helm(['lint', CHART, '-f', `${CHART}/values-production.yaml`]).status, 0, 'and with the production values')
  const offline = [
    '--set',
    'replicaCount=1',
    '--set',
    'autoscaling.enabled=false',
    '--set',
    `secretEnv.JWT_SECRET=${JWT}`
  ]
  t.not(template(offline).status, 0, 'one replica still needs an LLM key in production')
  t.equal(
    template([...offline, '--set', 'env.LLM_PROVIDER=offline']).status,
    0,
    'unless LLM_PROVIDER=offline is chosen'
  )
})

t.test('grace period and preStop follow SHUTDOWN_GRACE_MS', async t => {
  for (const flag of ['--set', '--set-string']) {
    const pod = podSpec(render([...SECRETS, flag, 'env.SHUTDOWN_GRACE_MS=60000']))
    const preStop = Number(pod.containers[0].lifecycle.preStop.exec.command[1])
    t.ok(
      pod.terminationGracePeriodSeconds > 60 + preStop,
      `${flag}: ${pod.terminationGracePeriodSeconds} s > preStop ${preStop} s + 60 s`
    )
  }
  const unset = podSpec(render([...SECRETS, '--set', 'env.SHUTDOWN_GRACE_MS=null']))
  t.equal(unset.terminationGracePeriodSeconds, 5 + 10 + 10, 'without SHUTDOWN_GRACE_MS: the app default (10 s)')
  t.equal(
    podSpec(render([...SECRETS, '--set', 'terminationGracePeriodSeconds=120'])).terminationGracePeriodSeconds,
    120,
    'a longer explicit value is kept'
  )
  const short = template([
    ...SECRETS,
    '--set',
    'env.SHUTDOWN_GRACE_MS=60000',
    '--set',
    'terminationGracePeriodSeconds=30'
  ])
  t.not(short.status, 0, 'a grace period shorter than preStop + SHUTDOWN_GRACE_MS is refused')
  t.match(short.stderr, 'terminationGracePeriodSeconds (30) must exceed preStopSleepSeconds + SHUTDOWN_GRACE_MS (65 s)')
})

t.test('env.PORT gives one PORT key; a PORT other than containerPort is refused', async t => {
  const objects = render([...SECRETS, '--set', 'env.PORT=3001'])
  t.equal(configData(objects).PORT, '3001', 'render parses: no duplicate key')
  const moved = render([...SECRETS, '--set', 'containerPort=8080'])
  t.equal(configData(moved).PORT, '8080')
  const clash = template([...SECRETS, '--set', 'env.PORT=8080'])
  t.not(clash.status, 0)
  t.match(clash.stderr, 'env.PORT differs from containerPort')
})

t.test('METRICS_PORT with a NetworkPolicy needs the sources allowed to scrape it', async t => {
  const open = template([...SECRETS, '--set', 'env.METRICS_PORT=9464'])
  t.not(open.status, 0)
  t.match(open.stderr, 'networkPolicy.metricsFrom must name Prometheus')
  t.equal(
    template([...SECRETS, '--set', 'env.METRICS_PORT=9464', '--set', 'networkPolicy.enabled=false']).status,
    0,
    'no NetworkPolicy: nothing to name'
  )
})

t.test('numbers and booleans from --set pass the schema and reach the ConfigMap as strings', async t => {
  const objects = render([
    ...SECRETS,
    '--set',
    'env.MAX_CONCURRENT_STREAMS=500',
    '--set',
    'env.LANGSMITH_SAMPLE_RATE=0.5',
    '--set',
    'env.REDIS_REQUIRED=true',
    '--set',
    'env.STREAM_LOG_MAX_EVENTS=1000000',
    '--set',
    'replicaCount=3'
  ])
  const data = configData(objects)
  t.same(
    [data.MAX_CONCURRENT_STREAMS, data.LANGSMITH_SAMPLE_RATE, data.REDIS_REQUIRED, data.STREAM_LOG_MAX_EVENTS],
    ['500', '0.5', 'true', '1000000']
  )
  for (const object of objects) { t.equal(await schemaErrors(object), '', `${object.kind} ${object.metadata.name} is schema-valid`) }
})

t.test('unknown env names and a short JWT_SECRET are refused; the generated schema is fresh', async t => {
  const typo = template([...SECRETS, '--set', 'env.SHUTDOWN_GRACE=60000'])
  t.not(typo.status, 0, 'env.SHUTDOWN_GRACE (a typo) is refused')
  t.match(typo.stderr, "invalid propertyName 'SHUTDOWN_GRACE'")
  const secretTypo = template([...SECRETS, '--set', 'secretEnv.GEMINI_KEY=k'])
  t.match(secretTypo.stderr, "invalid propertyName 'GEMINI_KEY'", 'in secretEnv too')
  const short = template([...SECRETS, '--set', 'secretEnv.JWT_SECRET=too-short'])
  t.not(short.status, 0)
  t.match(short.stderr, "at '/secretEnv/JWT_SECRET': minLength: got 9, want 32")

  const current = await readFile(SCHEMA_PATH, 'utf8')
  t.ok(isFresh(current), 'values.schema.json matches src/config.ts (else: npm run chart-schema)')
  const stale = JSON.parse(current)
  stale.properties.env.propertyNames.enum.pop()
  t.notOk(isFresh(JSON.stringify(stale)), 'a schema missing a variable is stale')
  t.ok(isFresh(withGeneratedEnv(JSON.stringify(stale))), 'and regenerating fixes it')
})

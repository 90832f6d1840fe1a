// GET /api/metrics: valid Prometheus exposition (promtool), guarded unless METRICS_PUBLIC, bounded
// cardinality (unknown URLs add no label values), the JSON view, the prefix, and reset never public.
import t from 'tap'
import { spawn } from 'node:child_process'
import { build, needs } from '../support.js'

const TOKEN = 'metrics-token-for-tests-0123456789'

/** The series (name and labels, without the value) of an exposition. */
function series (exposition: string): Set<string> {
  return new Set(
    exposition
      .split('\n')
      .filter(line => line && !line.startsWith('#'))
      .map(line => line.replace(/ [^ ]+$/, ''))
  )
}

async function promtool (exposition: string): Promise<{ code: number | null, output: string }> {
  const child = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', chunk => { output += chunk })
  child.stderr.on('data', chunk => { output += chunk })
  child.stdin.end(exposition)
  const code = await new Promise<number | null>(resolve => child.on('close', resolve))
  return { code, output }
}

t.test('guarded by default: 401 without a credential, 200 with the METRICS_TOKEN bearer', async t => {
  const app = await build(t, { env: { METRICS_TOKEN: TOKEN } })
  const anonymous = await app.inject('/api/metrics')
  t.equal(anonymous.statusCode, 401)
  t.equal(anonymous.json().code, 'AMK_UNAUTHORIZED')
  const wrong = await app.inject({ url: '/api/metrics', headers: { authorization: 'Bearer not-the-token-at-all' } })
  t.equal(wrong.statusCode, 401)
  const res = await app.inject({ url: '/api/metrics', headers: { authorization: `Bearer ${TOKEN}` } })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  t.match(res.body, /^# HELP /m)
  const json = await app.inject({ url: '/api/metrics/json', headers: { authorization: `Bearer ${TOKEN}` } })
  t.equal(json.statusCode, 200)
  t.ok(json.json().metrics.some((m: { name: string }) => m.name === 'http_requests_total'))
  t.equal((await app.inject('/api/metrics/json')).statusCode, 401)
})

t.test('METRICS_PUBLIC=true opens the read endpoints, never the reset', async t => {
  const app = await build(t, { env: { METRICS_PUBLIC: 'true', METRICS_TOKEN: TOKEN } })
  t.equal((await app.inject('/api/metrics')).statusCode, 200)
  t.equal((await app.inject('/api/metrics/json')).statusCode, 200)
  const reset = await app.inject({ method: 'POST', url: '/api/metrics/reset' })
  t.equal(reset.statusCode, 401)
  const withToken = await app.inject({
    method: 'POST',
    url: '/api/metrics/reset',
    headers: { authorization: `Bearer ${TOKEN}` }
  })
  t.ok([401, 403].includes(withToken.statusCode), `the metrics token cannot reset (${withToken.statusCode})`)
})

t.test('request metrics use route templates', async t => {
  const app = await build(t, { env: { METRICS_PUBLIC: 'true' } })
  await app.inject('/api/status')
  await app.inject('/api/health/live')
  const body = (await app.inject('/api/metrics')).body
  t.match(body, 'http_requests_total{method="GET",route="/api/status",status_code="200"} 1')
  t.match(
    body,
    /http_request_duration_seconds_bucket\{le="0\.005",method="GET",route="\/api\/health\/live",status_code="200"\}/
  )
  t.notMatch(body, /route="\/api\/metrics"/, 'the scrape itself is not timed')
})

t.test('exposition passes promtool check metrics', { skip: needs('promtool') }, async t => {
  const app = await build(t, { env: { METRICS_PUBLIC: 'true' } })
  for (const url of ['/api/status', '/api', '/api/health', '/nope']) await app.inject(url)
  const exposition = (await app.inject('/api/metrics')).body
  const { code, output } = await promtool(exposition)
  // Exit 1 is a parse error, 3 a lint problem (such as prom-client's nodejs_active_*_total gauges).
  t.equal(code, 0, `promtool check metrics passes: ${output}`)
  t.equal(output.trim(), '', 'no lint warning')
  t.notMatch(exposition, /^# TYPE \w+_total (gauge|histogram|summary|untyped)$/m, 'only counters end in _total')
  t.match(exposition, /^nodejs_active_handles\{type="\w+"\} \d+$/m, 'the per-type handle gauges remain')
})

t.test('1,000 distinct unknown URLs add no label values', async t => {
  // Whitelisted so the rate limiter (which also counts 404s) lets all of them through.
  const app = await build(t, { env: { METRICS_PUBLIC: 'true', RATE_LIMIT_WHITELIST: '127.0.0.1' } })
  await app.inject('/unknown/warm-up')
  await app.inject({ method: 'POST', url: '/unknown/warm-up', payload: {} })
  await app.inject('/api/metrics') // the scrape counts itself from the next one on
  const before = series((await app.inject('/api/metrics')).body)
  for (let i = 0; i < 1000; i++) {
    const res = await app.inject({
      method: i % 2 ? 'GET' : 'POST',
      url: `/unknown/${i}/path-${Math.random().toString(36).slice(2)}?q=${i}`,
      payload: i % 2 ? undefined : {}
    })
    if (res.statusCode !== 404) t.fail(`unexpected ${res.statusCode}`)
  }
  const afterBody = (await app.inject('/api/metrics')).body
  const after = series(afterBody)
  // Process metrics (e.g. a GC kind seen for the first time) may appear at any moment; request series may not.
  const added = [...after].filter(s => !before.has(s) && s.includes('route='))
  t.ok(before.size > 20, `${before.size} series before`)
  t.same(added, [], 'no new request series')
  t.notMatch(afterBody, /unknown\/\d/, 'no URL appears as a label')
  t.match(afterBody, /http_requests_total\{method="GET",route="__not_found__",status_code="404"\} 501/)
})

t.test('METRICS_PREFIX prefixes every metric; meters are shared per app', async t => {
  const app = await build(t, { env: { METRICS_PUBLIC: 'true', METRICS_PREFIX: 'amk_' } })
  const counter = app.meters.counter('test_events_total', 'Test events', ['kind'])
  t.equal(app.meters.counter('test_events_total', 'Test events', ['kind']), counter, 'the same metric when asked twice')
  counter.inc({ kind: 'a' })
  await app.inject('/api/status')
  const body = (await app.inject('/api/metrics')).body
  t.match(body, 'amk_test_events_total{kind="a"} 1')
  t.match(body, 'amk_http_requests_total{')
  t.match(body, 'amk_http_request_duration_seconds_bucket{')
  t.match(body, 'amk_process_cpu_seconds_total')
  const names = body.split('\n').filter(line => line.startsWith('# TYPE ')).map(line => line.split(' ')[2])
  t.same(names.filter(name => !name.startsWith('amk_')), [], 'every metric is prefixed')

  const other = await build(t, { env: { METRICS_PUBLIC: 'true', METRICS_PREFIX: 'amk_' } })
  t.notMatch((await other.inject('/api/metrics')).body, 'amk_test_events_total{', 'another app has its own registry')
})

// The alert rules: helm/amrikyy-agent/files/alerts.yml passes `promtool check rules`, its unit tests
// (alerts.test.yml) pass `promtool test rules`, every alert the issue asks for is there, and the chart renders
// the same groups as a schema-valid PrometheusRule when prometheusRule.enabled (and none by default).
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { parse } from 'yaml'
import { needs } from '../support.js'
import { render, ROOT, schemaErrors, SECRETS } from '../deploy/helm-tool.js'

const RULES_FILE = 'helm/amrikyy-agent/files/alerts.yml'
const UNIT_TESTS = 'test/monitoring/alerts.test.yml'

interface Rule { alert?: string, record?: string, expr: string }
const groups = (
  parse(readFileSync(`${ROOT}/${RULES_FILE}`, 'utf8')) as { groups: Array<{ name: string; rules: Rule[] }> }
).groups

function promtool (args: string[]) {
  const run = spawnSync('promtool', args, { cwd: ROOT, encoding: 'utf8', timeout: 60_000 })
  return { status: run.status, output: `${run.stdout}${run.stderr}` }
}

t.test('promtool check rules passes', { skip: needs('promtool') }, async t => {
  const { status, output } = promtool(['check', 'rules', RULES_FILE])
  t.equal(status, 0, output)
  t.match(output, /SUCCESS: \d+ rules found/)
  t.notMatch(output, /WARNING/i)
})

t.test(
  'promtool test rules passes (each alert fires on its case, not on the calm one)',
  { skip: needs('promtool') },
  async t => {
    const { status, output } = promtool(['test', 'rules', UNIT_TESTS])
    t.equal(status, 0, output)
    const tested = new Set(
      [...readFileSync(`${ROOT}/${UNIT_TESTS}`, 'utf8').matchAll(/alertname: (\w+)/g)].map(m => m[1])
    )
    for (const rule of groups.flatMap(g => g.rules)) { if (rule.alert) t.ok(tested.has(rule.alert), `${rule.alert} has a unit test`) }
  }
)

t.test('the alerts the issue lists are all there, on metrics the app exports', async t => {
  const exprs = Object.fromEntries(groups.flatMap(g => g.rules).map(r => [r.alert, r.expr]))
  const wanted: Record<string, RegExp> = {
    AmrikyyHighErrorRate: /http_requests_total\{status_code=~"5\.\."\}/,
    AmrikyyHighLatencyP99: /histogram_quantile\(0\.99, .*http_request_duration_seconds_bucket/,
    AmrikyyLlmErrorRate: /llm_calls_total\{status="error"\}/,
    AmrikyyLlmSlow: /llm_call_duration_seconds_bucket/,
    AmrikyyBudgetExhaustion: /budget_rejections_total/,
    AmrikyyRedisDown: /redis_breaker_open/,
    AmrikyyDatabaseDown: /usage_buffer_depth/,
    AmrikyyUsageBufferGrowing: /deriv\(usage_buffer_depth/,
    AmrikyyStreamsNearCap: /stream_sessions_active[\s\S]*stream_sessions_max/
  }
  for (const [alert, pattern] of Object.entries(wanted)) t.match(exprs[alert], pattern, alert)
})

t.test('the chart: PrometheusRule off by default; when enabled, the rules file verbatim and schema-valid', async t => {
  t.notOk(render(SECRETS).some(o => o.kind === 'PrometheusRule'), 'off by default')
  const rendered = render([
    ...SECRETS,
    '--set',
    'prometheusRule.enabled=true',
    '--set',
    'prometheusRule.labels.release=kps'
  ])
  const rule = rendered.find(o => o.kind === 'PrometheusRule')
  if (!rule) return t.fail('no PrometheusRule rendered')
  t.equal(rule.apiVersion, 'monitoring.coreos.com/v1')
  t.match(rule.metadata, { labels: { release: 'kps' } })
  t.same(rule.spec, { groups }, 'spec.groups is files/alerts.yml')
  t.equal(await schemaErrors(rule), '', 'valid against the prometheus-operator CRD schema')
})

// A real Prometheus server (Debian's `prometheus`) scrapes a running app through METRICS_PORT every second,
// with the chart's alert rules loaded. Every Grafana dashboard query must return data; every alert rule must
// evaluate without error and every metric it reads must have series (alerts themselves may be empty
// vectors: a healthy app should not fire them). Traffic covers each panel: routes, a 5xx, agent calls,
// a cache hit, a stream, a workflow, a rate-limit 429 and a budget refusal.
import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse } from 'yaml'
import { startMetricsListener } from '../../src/plugins/metrics.js'
import { build, freePort, needs, redisPrefix, REDIS_URL, which } from '../support.js'

// Each build costs a PGlite cold start, seconds on a loaded machine: room beyond .taprc's 120 s.
t.setTimeout(240_000)

const ROOT = new URL('../..', import.meta.url).pathname
const RULES = join(ROOT, 'helm/amrikyy-agent/files/alerts.yml')
const DASHBOARD = join(ROOT, 'helm/amrikyy-agent/dashboards/amrikyy-agent.json')
const PREMIUM = 'amk_prom_test_premium_key_0123456789'
const USER = 'amk_prom_test_user_key_0123456789abc'

type Vector = Array<{ metric: Record<string, string>, value: [number, string] }>

function dashboardQueries (): string[] {
  const found: string[] = []
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(walk)
    else if (node && typeof node === 'object') {
      for (const [key, value] of Object.entries(node)) {
        if (key === 'expr' && typeof value === 'string') found.push(value)
        else walk(value)
      }
    }
  }
  walk(JSON.parse(readFileSync(DASHBOARD, 'utf8')))
  return found
}

function needsPrometheus (): false | string {
  if (which('prometheus')) return false
  if (process.env.CI === 'true') throw new Error('prometheus not on PATH (CI=true requires it)')
  return 'SKIPPED: prometheus not on PATH (apt-get install -y prometheus)'
}
const prometheusSkip = needs('redis') || needs('promtool') || needsPrometheus()

t.test(
  'a real Prometheus: every dashboard query returns data, every alert rule evaluates',
  { skip: prometheusSkip, timeout: 200_000 },
  async t => {
    const app = await build(t, {
      env: {
        REDIS_URL,
        REDIS_KEY_PREFIX: redisPrefix(),
        VALID_API_KEYS: `${PREMIUM}:premium,${USER}:user`,
        RATE_LIMIT_EXEMPT_ROLES: 'premium,admin,internal',
        RATE_LIMIT_GLOBAL_MAX: '8',
        BUDGETS: '{"user":{"tokens":1}}',
        LLM_PRICING: '{"offline":{"input":1000,"output":1000}}'
      },
      before: app =>
        app.get('/test/boom', { config: { public: true } }, async () => {
          throw new Error('boom')
        })
    })
    const metricsPort = await freePort()
    const listener = await startMetricsListener(app, metricsPort, '127.0.0.1')
    t.teardown(
      () =>
        new Promise(resolve => {
          listener.closeAllConnections()
          listener.close(resolve)
        })
    )

    const dir = mkdtempSync(join(tmpdir(), 'amk-prometheus-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    writeFileSync(
      join(dir, 'prometheus.yml'),
      [
        'global: { scrape_interval: 1s, evaluation_interval: 1s }',
        `rule_files: ['${RULES}']`,
        `scrape_configs: [{ job_name: amrikyy-agent, static_configs: [{ targets: ['127.0.0.1:${metricsPort}'] }] }]`
      ].join('\n')
    )
    const port = await freePort()
    const prometheus = spawn(
      'prometheus',
      [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] }
    )
    let log = ''
    prometheus.stderr.on('data', chunk => {
      log += chunk
    })
    const exited = new Promise(resolve => prometheus.once('exit', resolve))
    t.teardown(async () => {
      prometheus.kill('SIGTERM')
      await exited
    })
    const api = async (path: string) =>
      (await (await fetch(`http://127.0.0.1:${port}/api/v1/${path}`)).json()) as {
        status: string
        error?: string
        data: any
      }
    const query = async (expr: string) => api(`query?query=${encodeURIComponent(expr)}`)
    const waitFor = async (what: string, check: () => Promise<boolean>) => {
      for (let i = 0; i < 120; i++) {
        if (await check().catch(() => false)) return
        await new Promise(resolve => setTimeout(resolve, 500))
      }
      throw new Error(`${what} did not happen within 60 s:\n${log.slice(-2000)}`)
    }
    await waitFor('a first scrape', async () => (await query('up{job="amrikyy-agent"} == 1')).data.result.length === 1)

    const traffic = async () => {
      const premium = { 'x-api-key': PREMIUM }
      const visa = { destination: 'Japan', nationality: 'Egypt', duration: 10 }
      for (const url of ['/api/status', '/api/health', '/test/boom', '/nope']) await app.inject(url)
      for (let i = 0; i < 2; i++) {
        await app.inject({
          method: 'POST',
          url: '/api/agents/travel/getVisaRequirements',
          headers: premium,
          payload: visa
        })
      }
      await app.inject({ url: '/api/stream/blog?topic=Budget+travel&length=300', headers: premium })
      await app.inject({
        method: 'POST',
        url: '/api/coordinator/sequential',
        headers: premium,
        payload: {
          steps: [{ agent: 'travel', method: 'generateItinerary', input: { destination: 'Oslo', duration: 2 } }]
        }
      })
      for (let i = 0; i < 10; i++) await app.inject({ url: '/api/auth/me', headers: { 'x-api-key': USER } })
      await app.inject({
        method: 'POST',
        url: '/api/agents/travel/getVisaRequirements',
        headers: { 'x-api-key': USER, 'cache-control': 'no-cache' },
        payload: { ...visa, nationality: 'Peru' }
      })
    }
    // Traffic between scrapes, twice, so every rate() has two different samples.
    for (let round = 0; round < 2; round++) {
      await traffic()
      const after = Date.now() / 1000
      // up's timestamp is that of the last scrape: two of them after the traffic.
      await waitFor(
        'two scrapes after the traffic',
        async () =>
          Number((await query('timestamp(up{job="amrikyy-agent"})')).data.result[0]?.value[1] ?? 0) > after + 1.5
      )
    }

    const queries = dashboardQueries()
    t.ok(queries.length >= 15, `${queries.length} dashboard queries`)
    for (const expr of queries) {
      const res = await query(expr.replaceAll('$job', '.+'))
      t.equal(res.status, 'success', `valid: ${expr} ${res.error ?? ''}`)
      t.ok(((res.data?.result as Vector) ?? []).length > 0, `returns data: ${expr}`)
    }

    const rules = (
      parse(readFileSync(RULES, 'utf8')) as { groups: Array<{ rules: Array<{ alert: string; expr: string }> }> }
    ).groups.flatMap(g => g.rules)
    await waitFor('every rule group evaluated', async () =>
      (await api('rules')).data.groups
        .flatMap((g: { rules: Array<{ lastEvaluation: string }> }) => g.rules)
        .every((r: { lastEvaluation: string }) => !r.lastEvaluation.startsWith('0001'))
    )
    const loaded = (await api('rules')).data.groups.flatMap((g: { rules: unknown[] }) => g.rules) as Array<{
      name: string
      health: string
      lastError?: string
    }>
    t.same(loaded.map(r => r.name).sort(), rules.map(r => r.alert).sort(), 'Prometheus loaded every rule')
    for (const rule of loaded) t.equal(rule.health, 'ok', `${rule.name} evaluates ${rule.lastError ?? ''}`)
    for (const rule of rules) {
      t.equal((await query(rule.expr)).status, 'success', `${rule.alert}: the expression runs`)
      const names = new Set(
        [...rule.expr.matchAll(/\b([a-z_]+(?:_total|_bucket|_open|_depth|_active|_max))\b/g)].map(m => m[1])
      )
      for (const name of names) { t.ok((await query(`count(${name})`)).data.result.length > 0, `${rule.alert}: ${name} has series`) }
    }
  }
)

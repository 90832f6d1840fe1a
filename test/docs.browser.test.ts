// Swagger UI in a real headless Chromium: /docs loads under the app's CSP, fetches /openapi.json and
// lists the operations. Skipped with a reason when Chromium is absent (a failure under CI=true).
import t from 'tap'
import { chromium, type Browser } from 'playwright-core'
import { build, CHROMIUM_ARGS, CHROMIUM_PATH, needs } from './support.js'

t.test('/docs lists the operations in headless Chromium', { skip: needs('chromium') }, async t => {
  const app = await build(t)
  const address = await app.listen({ port: 0, host: '127.0.0.1' })

  const browser: Browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true })
  t.teardown(() => browser.close())
  const page = await browser.newPage()
  const problems: string[] = []
  page.on('console', message => { if (message.type() === 'error') problems.push(message.text()) })
  page.on('pageerror', error => problems.push(error.message))
  const specRequests: number[] = []
  page.on('response', response => {
    if (response.url().endsWith('/openapi.json') || response.url().endsWith('/docs/json')) { specRequests.push(response.status()) }
  })

  const res = await page.goto(`${address}/docs`, { waitUntil: 'load' })
  t.ok(res && res.status() < 400, `GET /docs answered ${res?.status()}`)
  const csp = (await res?.allHeaders())?.['content-security-policy'] ?? ''
  t.match(csp, "script-src 'self'", 'the docs have a CSP')
  t.notMatch(csp, 'upgrade-insecure-requests', 'docs work over plain HTTP inside a cluster')
  await page.waitForSelector('.opblock', { timeout: 30_000 })

  t.equal(
    await page
      .locator('.info .title')
      .first()
      .innerText()
      .then(text => text.includes('Amrikyy Agent API')),
    true,
    'the title is shown'
  )
  const listed = await page.locator('.opblock-summary-path').allInnerTexts()
  const paths = listed.map(text => text.replace(/\u200b/g, '').trim())
  for (const path of ['/api', '/api/status', '/api/health', '/api/health/live', '/api/health/ready', '/api/metrics']) {
    t.ok(paths.includes(path), `${path} is listed`)
  }
  const operationIds = (await page.locator('.opblock-summary-operation-id').allInnerTexts()).map(s => s.trim())
  t.ok(operationIds.includes('getServiceStatus'), 'operation ids are displayed')
  t.ok(specRequests.length > 0 && specRequests.every(status => status === 200), 'the spec was fetched')
  t.same(problems.filter(text => /Content Security Policy|Refused to/i.test(text)), [], 'no CSP violation')
  t.same(problems, [], 'no console error')
})

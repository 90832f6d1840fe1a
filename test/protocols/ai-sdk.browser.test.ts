// Acceptance 3 (Chromium): a page served by its own origin bundles the `ai` package's DefaultChatTransport and
// readUIMessageStream (test/protocols/fixtures/ai-sdk-page.ts, bundled by esbuild), points the transport at
// the stream routes with ?format=ui-message-stream across origins (CORS: ALLOWED_ORIGINS), and reports the
// final message: its text and data parts equal the native stream's result. A refusal reaches the page as the
// transport's error with our code. Skipped with a reason when Chromium is absent (a failure with CI=true).
import t, { type Test } from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { build as bundle } from 'esbuild'
import { chromium, type Page } from 'playwright-core'
import { CHROMIUM_ARGS, CHROMIUM_PATH, needs } from '../support.js'
import { buildStreams, listen, PREMIUM_KEY, ROUTES, type RouteName } from '../streams/support.js'
import { nativeStream, UI_FORMAT } from './ai-sdk-support.js'
import type { ChatOutcome } from './fixtures/ai-sdk-page.js'

/** The page's own origin: an HTML page and the bundled script. */
async function pageServer (script: string): Promise<{ url: string, close(): Promise<void> }> {
  const html = '<!doctype html><html><head><script src="/page.js"></script></head><body>chat</body></html>'
  const server = http.createServer((req, res) => {
    const js = req.url === '/page.js'
    res.writeHead(200, { 'content-type': js ? 'text/javascript' : 'text/html' })
    res.end(js ? script : html)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise(resolve => server.close(() => resolve()))
  }
}

async function openPage (t: Test, env: Record<string, string> = {}) {
  const built = await bundle({
    entryPoints: [new URL('./fixtures/ai-sdk-page.ts', import.meta.url).pathname],
    bundle: true,
    format: 'iife',
    platform: 'browser',
    minify: true,
    write: false
  })
  const site = await pageServer(built.outputFiles[0].text)
  t.teardown(site.close)
  // The API on another origin (another port), which allows the page's.
  const app = await buildStreams(t, { env: { ALLOWED_ORIGINS: site.url, ...env } })
  const api = await listen(app)
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true })
  t.teardown(() => browser.close())
  const page = await (await browser.newContext()).newPage()
  await page.goto(site.url)
  return { app, api, page, origin: site.url }
}

const runChat = (page: Page, url: string, body: Record<string, unknown>) =>
  page.evaluate(
    async ({ url, apiKey, body }) => {
      const run = Reflect.get(globalThis, 'runChat') as (a: string, k: string, b: unknown) => Promise<ChatOutcome>
      try {
        return { outcome: await run(url, apiKey, body) }
      } catch (error) {
        return { failed: String(error) }
      }
    },
    { url, apiKey: PREMIUM_KEY, body }
  )

t.test('Chromium: the AI SDK chat transport reads each stream route as the native stream', {
  skip: needs('chromium')
}, async t => {
  const { api, page, origin } = await openPage(t)
  t.not(new URL(api).origin, origin, 'the page and the API are different origins')
  // The reference in an app of its own, so neither answer comes from the other's response cache.
  const nativeApp = await buildStreams(t)
  for (const route of Object.keys(ROUTES) as RouteName[]) {
    const native = await nativeStream(nativeApp, route)
    const answer = await runChat(page, `${api}/api/stream/${route}?${UI_FORMAT}`, ROUTES[route].input)
    t.notOk(answer.failed, `${route}: the page read the stream ${answer.failed ?? ''}`)
    const outcome = answer.outcome!
    t.same(outcome.errors, [], `${route}: no error chunk`)
    t.match(outcome.id, /^st_[0-9a-f]{24}$/, `${route}: the message id is the stream id`)
    t.equal(outcome.text, native.text, `${route}: the text part is the native token text`)
    t.same(outcome.data['data-result'], [native.result], `${route}: data-result is the native result`)
    t.same(outcome.data['data-usage'], [native.usage], `${route}: data-usage is the native usage`)
    const items = [...(outcome.data['data-partial'] ?? []), ...(outcome.data['data-post'] ?? [])]
    t.same(items, native.items, `${route}: the item data parts are the native partial / post events`)
    t.same(outcome.chunkTypes.slice(0, 2), ['start', 'start-step'])
    t.equal(outcome.chunkTypes.at(-1), 'finish')
  }
})

t.test('Chromium: a refused stream rejects the chat transport with the error code', {
  skip: needs('chromium')
}, async t => {
  const { api, page } = await openPage(t, { BUDGETS: '{"premium":{"tokens":1}}' })
  const first = await runChat(page, `${api}/api/stream/blog?${UI_FORMAT}`, ROUTES.blog.input)
  t.equal(first.outcome?.chunkTypes.at(-1), 'finish', 'the first stream runs and spends the budget')
  const refused = await runChat(page, `${api}/api/stream/blog?${UI_FORMAT}`, ROUTES.blog.input)
  t.match(refused.failed, /"code":"AMK_BUDGET_EXCEEDED"/, 'the transport rejects with the error body')
})

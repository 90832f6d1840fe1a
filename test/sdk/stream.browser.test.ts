// The SDK in headless Chromium: client/index.ts bundled by esbuild into the page, stream() read with the
// browser's fetch through a proxy that cuts the first response mid-stream; the SDK resumes with
// Last-Event-ID and the page sees every logged event once. Skipped when Chromium is absent (fails with CI=true).
import t from 'tap'
import { build as bundle } from 'esbuild'
import { chromium } from 'playwright-core'
import { CHROMIUM_ARGS, CHROMIUM_PATH, needs } from '../support.js'
import { buildStreams, listen, PREMIUM_KEY, ROUTES } from '../streams/support.js'
import { cuttingProxy } from './proxy.js'

interface Received { id: string, event: string, data: any }

t.test(
  'the SDK in Chromium: a dropped stream resumes without loss or duplicates',
  { skip: needs('chromium') },
  async t => {
    const app = await buildStreams(t)
    const proxy = await cuttingProxy(new URL(await listen(app)), 4000)
    t.teardown(proxy.close)
    const built = await bundle({
      entryPoints: [new URL('../../client/index.ts', import.meta.url).pathname],
      bundle: true,
      format: 'iife',
      globalName: 'AmrikyySdk',
      platform: 'browser',
      write: false
    })
    const script = built.outputFiles[0].text

    const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true })
    t.teardown(() => browser.close())
    const page = await (await browser.newContext({ bypassCSP: true })).newPage()
    await page.goto(`${proxy.url}/api`)
    await page.addScriptTag({ content: script })
    const events = (await page.evaluate(
      async ({ baseUrl, apiKey, input }) => {
        const sdk = (globalThis as any).AmrikyySdk
        const client = sdk.createAmrikyyClient({ baseUrl, apiKey })
        const received: Received[] = []
        for await (const event of client.stream('blog', input, { reconnectDelayMs: 50 })) received.push(event)
        return received
      },
      { baseUrl: proxy.url, apiKey: PREMIUM_KEY, input: ROUTES.blog.input }
    )) as Received[]

    t.equal(events.at(-1)?.event, 'complete', 'the stream completed in the browser')
    t.equal(proxy.streamRequests.length, 2, 'the first request and one resume')
    const streamId = events[0].data.streamId
    const resumedFrom = /\r\nlast-event-id: ([^\r]+)/i.exec(proxy.streamRequests[1])?.[1]
    t.ok(resumedFrom?.startsWith(`${streamId}-`), `the resume sent Last-Event-ID ${resumedFrom}`)
    const logged = await app.streams.log.read(streamId, 0)
    t.same(
      events.map(e => e.id),
      logged.map(e => `${streamId}-${e.seq}`),
      'every logged event arrived once, in order'
    )
    const text = events
      .filter(e => e.event === 'token')
      .map(e => e.data.chunk)
      .join('')
    t.same(JSON.parse(text), events.find(e => e.event === 'result')?.data.data, 'the tokens concatenate to the result')
  }
)

// Acceptance 2: a real EventSource in headless Chromium opens a stream with a one-time ticket, the
// connection is dropped on the server side after a fixed byte count, usually inside a frame (a proxy
// between browser and app cuts it), the browser reconnects by itself to the same URL with Last-Event-ID,
// and the stream ends with every event exactly once; the GET stream continues by default, so the
// reconnect resumes it. And a server failure arrives as a `failure` event, never as EventSource.onerror
// (which means a lost connection).
// Skipped with a reason when Chromium is absent (a failure with CI=true).
import t from 'tap'
import { chromium } from 'playwright-core'
import { CHROMIUM_ARGS, CHROMIUM_PATH, needs } from '../support.js'
import { buildStreams, listen, premium, PREMIUM_KEY, ROUTES, stalling } from './support.js'
import { cuttingProxy } from '../sdk/proxy.js'
import { startGeminiServer } from '../fixtures/gemini-server.js'

interface Received { event: string, id: string, data: any }

t.test(
  'EventSource with a ticket survives a dropped connection: nothing lost or repeated',
  { skip: needs('chromium') },
  async t => {
    const app = await buildStreams(t)
    const appUrl = new URL(await listen(app))
    const proxy = await cuttingProxy(appUrl, 4000, 'GET /api/stream/')
    t.teardown(proxy.close)
    const { ticket } = (await app.inject({ method: 'POST', url: '/api/stream/tickets', headers: premium })).json()

    const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true })
    t.teardown(() => browser.close())
    const page = await (await browser.newContext({ bypassCSP: true })).newPage()
    await page.goto(`${proxy.url}/api`)
    const path = `/api/stream/blog?${ROUTES.blog.query}&ticket=${ticket}` // no onDisconnect: GET streams continue by default
    const outcome = (await page.evaluate(async (url: string) => {
      const events: Received[] = []
      let connectionErrors = 0
      let opens = 0
      const done = new Promise<void>(resolve => {
        const source = new EventSource(url)
        source.onopen = () => {
          opens++
        }
        source.onerror = () => {
          connectionErrors++
        } // only a lost connection now: server failures are `failure` events
        for (const name of ['connected', 'progress', 'token', 'result', 'usage', 'complete', 'failure']) {
          source.addEventListener(name, e => {
            const message = e as MessageEvent
            events.push({ event: name, id: message.lastEventId, data: JSON.parse(message.data) })
            if (name === 'complete' || name === 'failure') {
              source.close()
              resolve()
            }
          })
        }
      })
      // generous: the whole suite loads both cores
      await Promise.race([done, new Promise(resolve => setTimeout(resolve, 60_000))])
      return { events, connectionErrors, opens }
    }, path)) as { events: Received[]; connectionErrors: number; opens: number }

    const { events } = outcome
    t.equal(events.at(-1)?.event, 'complete', 'the stream completed in the browser')
    t.ok(
      outcome.connectionErrors >= 1 && outcome.opens >= 2,
      `the connection dropped and EventSource reconnected (${outcome.opens} opens)`
    )
    t.equal(proxy.streamRequests.length, 2, 'two stream requests: the first and the automatic reconnect')
    const streamId = events[0].data.streamId
    const resumeHeader = /\r\nlast-event-id: ([^\r]+)\r\n/i.exec(proxy.streamRequests[1])?.[1]
    t.ok(resumeHeader?.startsWith(`${streamId}-`), `the reconnect sent Last-Event-ID ${resumeHeader}`)
    t.ok(proxy.streamRequests[1].includes(`ticket=${ticket}`), 'with the same URL (and ticket)')
    const logged = await app.streams.log.read(streamId, 0)
    t.same(
      events.map(e => e.id),
      logged.map(e => `${streamId}-${e.seq}`),
      'every logged event arrived once, in order'
    )
    t.same(
      events.map(e => e.event),
      logged.map(e => (e.event === 'error' ? 'failure' : e.event))
    )
    const text = events
      .filter(e => e.event === 'token')
      .map(e => e.data.chunk)
      .join('')
    t.same(
      JSON.parse(text),
      events.find(e => e.event === 'result')?.data.data,
      'the tokens still concatenate to the result'
    )
  }
)

t.test(
  'plain EventSource tells a server failure (`failure` event) from a lost connection (onerror)',
  { skip: needs('chromium') },
  async t => {
    // Gemini sends three chunks and then stalls until the client goes away, so the stream cannot finish
    // before the page's cancel reaches the server, however loaded the machine is.
    const gemini = await startGeminiServer(stalling)
    t.teardown(() => gemini.close())
    const app = await buildStreams(t, { env: { GEMINI_API_KEY: 'test-key', GEMINI_BASE_URL: gemini.url } })
    const appUrl = await listen(app)
    const { ticket } = (await app.inject({ method: 'POST', url: '/api/stream/tickets', headers: premium })).json()
    const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true })
    t.teardown(() => browser.close())
    const page = await (await browser.newContext({ bypassCSP: true })).newPage()
    await page.goto(`${appUrl}/api`)
    const path = `/api/stream/blog?topic=Failure+or+drop&length=600&ticket=${ticket}`
    const outcome = await page.evaluate(
      async ({ url, apiKey }) => {
        let onerrors = 0
        let failure: unknown
        let cancelled: Promise<number> | undefined
        let ended = 'timeout'
        const done = new Promise<void>(resolve => {
          const source = new EventSource(url)
          source.onerror = () => {
            onerrors++
          }
          // The page cancels its own stream once a token has arrived: the server ends it with a CANCELLED failure.
          source.addEventListener('token', e => {
            if (cancelled) return
            const streamId = (e as MessageEvent).lastEventId.replace(/-\d+$/, '') // ids are <streamId>-<seq>
            cancelled = fetch(`/api/stream/${streamId}/cancel`, {
              method: 'POST',
              headers: { 'x-api-key': apiKey }
            }).then(
              res => res.status,
              () => -1
            )
          })
          source.addEventListener('failure', e => {
            failure = JSON.parse((e as MessageEvent).data)
            ended = 'failure'
            source.close()
            resolve()
          })
          source.addEventListener('complete', () => {
            ended = 'complete'
            source.close()
            resolve()
          })
        })
        await Promise.race([done, new Promise(resolve => setTimeout(resolve, 60_000))])
        return { onerrors, failure, cancelStatus: await cancelled, ended }
      },
      { url: path, apiKey: PREMIUM_KEY }
    )
    t.equal(outcome.cancelStatus, 200, 'the page cancelled its stream')
    t.equal(outcome.ended, 'failure', 'the stream ended with a failure event')
    t.match(outcome.failure, { code: 'CANCELLED', recoverable: false }, 'the failure event, with its payload')
    t.equal(outcome.onerrors, 0, 'onerror never fired: the connection was not lost')
  }
)

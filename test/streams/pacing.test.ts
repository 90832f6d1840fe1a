// STREAM_FLUSH_MS through the running server: deltas that arrive faster than the interval share one socket
// write (the client reads them in one chunk), the first one after a quiet spell is not delayed, and 0 writes
// every delta on its own. The pump's rules in detail: test/streams/units.test.ts.
import http from 'node:http'
import t from 'tap'
import { offlineBuilder } from '../../src/agents/index.js'
import { createOfflineProvider } from '../../src/llm/offline.js'
import { sleep } from '../../src/llm/retry.js'
import type { LlmProvider } from '../../src/llm/types.js'
import { buildStreams, listen, premium, ROUTES } from './support.js'

/**
 * The offline answer in deltas: the first after 200 ms (a model's time to first token, longer than the
 * interval), the next three 10 ms apart, then a 300 ms pause, then the rest at once.
 */
function unevenProvider (): LlmProvider {
  const offline = createOfflineProvider({ build: offlineBuilder(), chunkSize: 200 })
  return {
    ...offline,
    async * stream (request) {
      let deltas = 0
      for await (const chunk of offline.stream(request)) {
        if (chunk.type === 'delta') {
          deltas++
          if (deltas === 1) await sleep(200)
          if (deltas > 1 && deltas <= 4) await sleep(10)
          if (deltas === 5) await sleep(300)
        }
        yield chunk
      }
    }
  }
}

/** Streams the blog route and returns, for each token index, which socket read it arrived in and when. */
async function tokenReads (flushMs: string) {
  const app = await buildStreams(t, {
    appOptions: { llmProvider: unevenProvider() },
    env: { STREAM_FLUSH_MS: flushMs }
  })
  const url = await listen(app)
  const reads: Array<{ at: number, text: string }> = []
  await new Promise<void>((resolve, reject) => {
    const req = http.request(`${url}/api/stream/blog`, {
      method: 'POST',
      headers: { ...premium, 'content-type': 'application/json', accept: 'text/event-stream' }
    }, res => {
      res.setEncoding('utf8')
      res.on('data', (text: string) => reads.push({ at: performance.now(), text }))
      res.on('end', resolve)
    })
    req.on('error', reject)
    req.end(JSON.stringify(ROUTES.blog.input))
  })
  const readOf = (index: number) => reads.findIndex(r => r.text.includes(`"index":${index}}`))
  return { reads, readOf, atOf: (index: number) => reads[readOf(index)].at }
}

t.test('STREAM_FLUSH_MS: faster deltas share a write; the first after a quiet spell is not delayed', async t => {
  const { readOf, atOf, reads } = await tokenReads('150')
  t.ok(readOf(0) >= 0 && readOf(1) > readOf(0), 'the first delta, after a quiet spell, went out on its own')
  t.equal(readOf(2), readOf(1), 'deltas 10 ms apart share one write')
  t.equal(readOf(3), readOf(1))
  t.ok(atOf(1) - atOf(0) >= 120, `the second delta waited for the tick: ${(atOf(1) - atOf(0)).toFixed(0)} ms`)
  t.match(reads.at(-1)?.text, 'event: complete')
})

t.test('STREAM_FLUSH_MS=0: every delta is its own write', async t => {
  const { readOf } = await tokenReads('0')
  t.ok(readOf(1) > readOf(0) && readOf(2) > readOf(1) && readOf(3) > readOf(2), 'one read per delta')
})

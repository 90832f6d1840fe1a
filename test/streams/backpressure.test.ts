// Acceptance 5: a client that reads nothing on a large stream keeps the server's buffered bytes for it
// bounded (the writer waits for 'drain'; the generation goes on into the event log), and gets every
// event once it reads. (A reader that falls behind the log cap gets STREAM_GAP: test/streams/event-log.test.ts.)
import t from 'tap'
import { createOfflineProvider } from '../../src/llm/offline.js'
import { encodeEvent } from '../../src/streams/events.js'
import { openSse } from './sse-client.js'
import { bigBlogPost, buildStreams, listen, premium, ROUTES, seqOf, until } from './support.js'

t.test('a reader that reads nothing: the server buffers a bounded amount, then delivers everything', async t => {
  const big = bigBlogPost()
  const provider = createOfflineProvider({ build: () => big, chunkSize: 2 })
  const app = await buildStreams(t, { appOptions: { llmProvider: provider }, env: { STREAM_LOG_MAX_EVENTS: '200000' } })
  const url = await listen(app)
  const stream = await openSse(`${url}/api/stream/blog`, { headers: premium, body: ROUTES.blog.input })
  stream.pause()
  await until(() => app.streams.service.connections.size === 1)
  const [connection] = app.streams.service.connections
  await until(() => app.streams.registry.active() === 0, 20)
  const logged = await app.streams.log.read(connection.streamId, 0)
  const producedBytes = logged.reduce((n, e) => n + encodeEvent(connection.streamId, e).length, 0)
  t.ok(producedBytes > 5_000_000, `the generation produced ${(producedBytes / 1e6).toFixed(1)} MB of events`)
  t.ok(connection.buffered < 256 * 1024, `buffered in the process for this client: ${connection.buffered} bytes`)
  t.ok(
    connection.lastEventId !== `${connection.streamId}-${logged.length}`,
    'the writer waits for drain instead of queueing the rest'
  )
  stream.resume()
  const frames = await stream.finished()
  t.equal(frames.length, logged.length, 'every event delivered once the client reads')
  t.same(frames.at(-1)?.event, 'complete')
  t.ok(frames.every((f, i) => seqOf(f) === i + 1))
})

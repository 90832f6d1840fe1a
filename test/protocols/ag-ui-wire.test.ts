// Issue 14, AG-UI pieces without a server: the agent-method wire turns a logged §8 stream into a sequence
// that @ag-ui/client's own verifier (verifyEvents) accepts, from the start and from any resume position;
// connection notices (SHUTTING_DOWN, STREAM_GAP); where the input of a RunAgentInput comes from.
import t from 'tap'
import { verifyEvents, type BaseEvent } from '@ag-ui/client'
import { EventType } from '@ag-ui/core'
import { EventSchemas } from '@ag-ui/core/schemas'
import { from, lastValueFrom, toArray } from 'rxjs'
import { agUiWire, inputOf, onDisconnectOf } from '../../src/protocols/ag-ui.js'
import type { LoggedEvent, StreamEvent } from '../../src/streams/events.js'

const STREAM = 'st_0123456789abcdef01234567'
const RUN = { threadId: 'th', runId: 'run' }
const TARGET = { agent: 'content', method: 'generateBlogPost' }
const result = { headline: 'Hi', body: 'there' }
const text = JSON.stringify(result)
const usage = { inputTokens: 10, outputTokens: 20, costUsd: 0.001, model: 'offline' }

const events: StreamEvent[] = [
  { event: 'connected', data: { streamId: STREAM, agent: 'content', method: 'generateBlogPost' } },
  { event: 'progress', data: { progress: 0, message: 'Starting' } },
  { event: 'token', data: { chunk: text.slice(0, 10), index: 0 } },
  { event: 'token', data: { chunk: '', index: 1 } },
  { event: 'token', data: { chunk: text.slice(10), index: 2 } },
  { event: 'result', data: { data: result } },
  { event: 'usage', data: usage },
  { event: 'complete', data: { durationMs: 5, usage } }
]
const logged: LoggedEvent[] = events.map((event, i) => ({ ...event, seq: i + 1 }))

/** The frames one connection writes for the events after `afterSeq`. */
function connection (afterSeq: number, tail: LoggedEvent[] = logged) {
  const wire = agUiWire(RUN, TARGET)
  const body = tail.filter(e => e.seq > afterSeq).map(e => wire.event(STREAM, e)).join('')
  return body.split('\n\n').filter(Boolean).map(block => {
    const lines = block.split('\n')
    return {
      id: lines.find(l => l.startsWith('id: '))?.slice(4),
      event: JSON.parse(lines.find(l => l.startsWith('data: '))!.slice(6)) as BaseEvent
    }
  })
}

const verified = (list: BaseEvent[]) => lastValueFrom(from(list).pipe(verifyEvents(), toArray()))

t.test('a whole stream: a sequence the AG-UI verifier accepts', async t => {
  const frames = connection(0)
  const list = frames.map(f => f.event)
  t.same(await verified(list), list, 'verifyEvents passes every event')
  t.ok(list.every(e => EventSchemas.safeParse(e).success), 'every event validates')
  t.same(list.map(e => e.type), [
    'RUN_STARTED', 'CUSTOM', 'TEXT_MESSAGE_START', 'TEXT_MESSAGE_CONTENT', 'TEXT_MESSAGE_CONTENT',
    'TEXT_MESSAGE_END', 'STATE_SNAPSHOT', 'CUSTOM', 'RUN_FINISHED'
  ], 'the empty delta is skipped')
  t.match(list[0], { threadId: 'th', runId: 'run', metadata: { streamId: STREAM, agent: 'content' } })
  t.match(list.at(-1), { result, outcome: { type: 'success' }, usage: [{ inputTokens: 10, outputTokens: 20, totalTokens: 30 }] })
  t.equal(list.filter(e => e.type === EventType.TEXT_MESSAGE_CONTENT).map(e => e.delta).join(''), text)
  t.same(
    frames.map(f => f.id),
    [`${STREAM}-1`, `${STREAM}-2`, undefined, `${STREAM}-3`, `${STREAM}-5`, undefined, `${STREAM}-6`, `${STREAM}-7`, `${STREAM}-8`],
    "the id on the last frame of each logged event's group"
  )
})

t.test('a resume from any position is a valid run by itself', async t => {
  for (let afterSeq = 1; afterSeq < logged.length; afterSeq++) {
    const list = connection(afterSeq).map(f => f.event)
    t.same(await verified(list), list, `after seq ${afterSeq}`)
    t.equal(list[0].type, EventType.RUN_STARTED)
    t.equal(list.at(-1)?.type, EventType.RUN_FINISHED)
  }
  const midText = connection(3).map(f => f.event)
  t.same(midText.slice(0, 3).map(e => e.type), ['RUN_STARTED', 'TEXT_MESSAGE_START', 'TEXT_MESSAGE_CONTENT'])
})

t.test('errors and notices', async t => {
  const failed: LoggedEvent[] = [
    ...logged.slice(0, 3),
    { event: 'error', data: { code: 'AMK_LLM_UNAVAILABLE', message: 'down', recoverable: false }, seq: 4 }
  ]
  const list = connection(0, failed).map(f => f.event)
  t.same(await verified(list), list)
  t.match(list.at(-1), { type: 'RUN_ERROR', code: 'AMK_LLM_UNAVAILABLE', message: 'down' })

  const wire = agUiWire(RUN, TARGET)
  const shutting = wire.notice(`${STREAM}-4`, {
    event: 'error',
    data: { code: 'SHUTTING_DOWN', message: 'reconnect', recoverable: true, lastEventId: `${STREAM}-4` }
  })
  t.match(shutting, `id: ${STREAM}-4\n`, 'the notice repeats the last id')
  const notice = shutting.split('\n\n').filter(Boolean).map(b => JSON.parse(b.split('data: ')[1]))
  t.match(notice, [{ type: 'RUN_STARTED' }, { type: 'CUSTOM', name: 'amk.SHUTTING_DOWN', value: { recoverable: true } }],
    'SHUTTING_DOWN: a CUSTOM event (the run goes on; resume with Last-Event-ID)')
  const gap = agUiWire(RUN, TARGET).notice(`${STREAM}-4`, {
    event: 'error', data: { code: 'STREAM_GAP', message: 'behind', recoverable: false }
  })
  t.match(gap, /"type":"RUN_ERROR","message":"behind","code":"STREAM_GAP"/, 'a gap ends the run: RUN_ERROR')
})

t.test('the input: forwardedProps.input, else the last user message as JSON, else a 400', async t => {
  const input = { topic: 'x' }
  const user = (content: unknown, id = 'm') => ({ id, role: 'user', content })
  t.same(inputOf({ forwardedProps: { input }, messages: [user('{"topic":"y"}')] }), input, 'forwardedProps.input first')
  t.same(inputOf({ messages: [user('{"topic":"old"}', 'a'), user(JSON.stringify(input), 'b'), { id: 'c', role: 'assistant', content: '{}' }] }),
    input, 'the last user message')
  t.same(inputOf({ messages: [user([{ type: 'text', text: '{"topic":' }, { type: 'text', text: '"x"}' }])] }), input,
    'text content parts, joined')
  for (const body of [{}, { messages: [user('hello')] }, { messages: [user('[1]')] }, { forwardedProps: { input: [1] } }]) {
    t.throws(() => inputOf(body), { statusCode: 400, code: 'AMK_VALIDATION', details: [{ field: 'forwardedProps.input' }] })
  }
  t.equal(onDisconnectOf({}), 'cancel')
  t.equal(onDisconnectOf({ forwardedProps: { onDisconnect: 'continue' } }), 'continue')
})

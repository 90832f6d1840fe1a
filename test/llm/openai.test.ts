// The optional OpenAI-compatible provider against a tiny local /v1/chat/completions server: JSON-schema
// structured output, usage, SSE streaming with include_usage, a retried 429, and use through the app.
import t, { type Test } from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { createOpenAiProvider } from '../../src/llm/openai.js'
import { buildApp, invoke } from '../agents/support.js'

interface Seen { body: Record<string, unknown>, authorization?: string }

async function openAiServer (t: Test, answer: () => string) {
  const seen: Seen[] = []
  const failures: number[] = []
  const server = http.createServer(async (req, res) => {
    let raw = ''
    for await (const chunk of req) raw += chunk
    const body = JSON.parse(raw) as Record<string, unknown> & { stream?: boolean }
    seen.push({ body, authorization: req.headers.authorization })
    if (req.url !== '/v1/chat/completions') return res.writeHead(404).end()
    const status = failures.shift()
    if (status) return res.writeHead(status, { 'retry-after': '0' }).end('{"error":"busy"}')
    const content = answer()
    if (!body.stream) {
      res.writeHead(200, { 'content-type': 'application/json' })
      return res.end(
        JSON.stringify({
          choices: [{ message: { role: 'assistant', content } }],
          usage: { prompt_tokens: 17, completion_tokens: 23 }
        })
      )
    }
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    for (let i = 0; i < content.length; i += 10) { res.write(`data: ${JSON.stringify({ choices: [{ delta: { content: content.slice(i, i + 10) } }] })}\n\n`) }
    res.write(`data: ${JSON.stringify({ choices: [], usage: { prompt_tokens: 17, completion_tokens: 23 } })}\n\n`)
    res.end('data: [DONE]\n\n')
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => { server.closeAllConnections(); server.close(() => resolve()) }))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, failures }
}

const SCHEMA = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }

t.test('generate and stream with json_schema output and reported usage; 429 retried', async t => {
  const server = await openAiServer(t, () => '{"city":"Alexandria"}')
  const provider = createOpenAiProvider({
    baseUrl: server.url,
    apiKey: 'sk-local',
    timeoutMs: 2000,
    retry: { maxRetries: 2, baseMs: 1, maxDelayMs: 10 }
  })
  server.failures.push(429)
  const result = await provider.generate({
    model: 'llama-3',
    system: 'sys',
    prompt: 'Which city?',
    responseSchema: SCHEMA
  })
  t.same(result.json, { city: 'Alexandria' })
  t.same(result.usage, { inputTokens: 17, outputTokens: 23 })
  t.equal(server.seen.length, 2, 'the 429 was retried')
  t.match(server.seen[1], {
    authorization: 'Bearer sk-local',
    body: {
      model: 'llama-3',
      messages: [
        { role: 'system', content: 'sys' },
        { role: 'user', content: 'Which city?' }
      ],
      response_format: { type: 'json_schema', json_schema: { name: 'output', schema: SCHEMA } }
    }
  })

  const deltas: string[] = []
  let done: unknown
  for await (const chunk of provider.stream({ model: 'llama-3', system: 's', prompt: 'p', responseSchema: SCHEMA })) {
    if (chunk.type === 'delta') deltas.push(chunk.delta)
    else done = chunk
  }
  t.equal(deltas.join(''), '{"city":"Alexandria"}')
  t.same(done, { type: 'done', usage: { inputTokens: 17, outputTokens: 23 }, model: 'llama-3' })
  t.match(server.seen.at(-1)?.body, { stream: true, stream_options: { include_usage: true } })
})

t.test('through the app: LLM_PROVIDER=openai serves a method and prices it from LLM_PRICING', async t => {
  const server = await openAiServer(t, () =>
    JSON.stringify({
      topic: 'Dahab',
      summary: 'A Red Sea town.',
      keyPoints: ['Diving'],
      subtopics: [],
      openQuestions: [],
      suggestedSources: ['Tourism board'],
      confidence: 'medium',
      source: 'llm-estimate'
    })
  )
  const app = await buildApp(t, {
    env: {
      LLM_PROVIDER: 'openai',
      OPENAI_BASE_URL: `${server.url}/v1`,
      OPENAI_MODEL: 'qwen2.5',
      LLM_PRICING: '{"qwen2.5":{"input":1,"output":1}}'
    }
  })
  t.equal(app.features.llmProvider, `openai-compatible (qwen2.5 at ${new URL(server.url).host})`)
  const res = await invoke(app, 'content', 'researchTopic', { topic: 'Dahab' })
  t.equal(res.statusCode, 200)
  t.same(res.json().usage, { inputTokens: 17, outputTokens: 23, costUsd: 0.00004, model: 'qwen2.5' })
})

// The offline provider: deterministic, schema-valid output from per-method builders (or the schema
// sampler), streamed in chunks, usage ≈ chars/4, model 'offline', and abortable.
import t from 'tap'
import { Type } from 'typebox'
import { Value } from 'typebox/value'
import { offlineBuilder } from '../../src/agents/index.js'
import { createOfflineProvider } from '../../src/llm/offline.js'
import { sampleFromSchema } from '../../src/llm/sample.js'
import { CASES, definitions } from '../agents/support.js'

const provider = createOfflineProvider({ build: offlineBuilder(), chunkSize: 16 })

t.test('every method builder produces schema-valid output from the input (no sampler fallback needed)', async t => {
  for (const { agent, method, input } of CASES) {
    const definition = definitions[agent].methods[method]
    if (!definition.offline) {
      t.equal(method, 'createCompletePackage', 'only the composite method has no builder')
      continue
    }
    const withDefaults = Value.Default(definition.input, structuredClone(input)) as Record<string, unknown>
    const built = definition.offline(withDefaults)
    t.ok(Value.Check(definition.output, built), `${agent}.${method} builder output validates`)
  }
})

t.test('builders stay schema-valid whatever the subject (seeded numbers never go negative)', async t => {
  const subjects = [
    'Athens',
    'Lisbon',
    'Paris',
    'Cairo',
    'Tokyo',
    'Reykjavik',
    'São Paulo',
    'Zanzibar',
    'Ulaanbaatar',
    'Quebec City',
    'fintech',
    'agritech',
    'climate',
    'healthcare',
    'edtech',
    'logistics'
  ]
  for (const { agent, method, input } of CASES) {
    const definition = definitions[agent].methods[method]
    if (!definition.offline) continue
    for (const subject of subjects) {
      const varied = structuredClone(input) as Record<string, unknown>
      for (const field of ['destination', 'to', 'topic', 'industry', 'idea']) { if (typeof varied[field] === 'string') varied[field] = subject }
      const built = definition.offline(Value.Default(definition.input, varied) as Record<string, unknown>)
      if (!Value.Check(definition.output, built)) {
        t.fail(
          `${agent}.${method} for ${subject}: ${[...Value.Errors(definition.output, built)].map(e => `${e.instancePath} ${e.message}`).join('; ')}`
        )
      }
    }
  }
  t.pass(`every builder validated for ${subjects.length} subjects`)
})

t.test('generate: deterministic JSON, honest usage, model offline', async t => {
  const request = {
    model: 'offline',
    system: 'system text',
    prompt: 'Flights from Cairo to Paris please',
    responseSchema: definitions.travel.methods.searchFlights.output,
    task: {
      agent: 'travel',
      method: 'searchFlights',
      input: { from: 'Cairo', to: 'Paris', date: '2030-01-02', passengers: 1, class: 'business' }
    }
  }
  const a = await provider.generate(request)
  const b = await provider.generate(request)
  t.equal(a.text, b.text)
  t.equal(a.model, 'offline')
  t.same(a.json, JSON.parse(a.text))
  t.match(a.text, /Paris/)
  t.match(a.text, /business/)
  t.same(a.usage, {
    inputTokens: Math.ceil((request.system + request.prompt).length / 4),
    outputTokens: Math.ceil(a.text.length / 4)
  })
})

t.test('stream: chunks that add up to the generate() text, then usage', async t => {
  const request = {
    model: 'offline',
    system: 's',
    prompt: 'p',
    responseSchema: definitions.content.methods.researchTopic.output,
    task: { agent: 'content', method: 'researchTopic', input: { topic: 'Nubian villages', depth: 'quick' } }
  }
  const deltas: string[] = []
  let done: unknown
  for await (const chunk of provider.stream(request)) {
    if (chunk.type === 'delta') deltas.push(chunk.delta)
    else done = chunk
  }
  t.ok(deltas.length > 5, 'several chunks')
  t.ok(deltas.every(d => d.length <= 16))
  t.equal(deltas.join(''), (await provider.generate(request)).text)
  t.match(done, { type: 'done', model: 'offline', usage: { inputTokens: 1 } })
})

t.test('stream: aborting stops it with AMK_CANCELLED', async t => {
  const controller = new AbortController()
  const request = {
    model: 'offline',
    system: 's',
    prompt: 'p',
    responseSchema: definitions.content.methods.generateBlogPost.output,
    task: {
      agent: 'content',
      method: 'generateBlogPost',
      input: {
        topic: 'A long post',
        type: 'guide',
        tone: 'casual',
        length: 2000,
        keywords: [],
        targetAudience: 'everyone'
      }
    },
    signal: controller.signal
  }
  let seen = 0
  await t.rejects((async () => {
    for await (const chunk of provider.stream(request)) {
      if (chunk.type === 'delta' && ++seen === 3) controller.abort()
    }
  })(), { code: 'AMK_CANCELLED' })
  t.equal(seen, 3)
})

t.test('without a builder the schema sampler answers, valid and labelled with the subject', async t => {
  const schema = Type.Object({
    title: Type.String({ maxLength: 30 }),
    tags: Type.Array(Type.String(), { minItems: 2, maxItems: 4 }),
    score: Type.Integer({ minimum: 3, maximum: 9 }),
    kind: Type.Union([Type.Literal('a'), Type.Literal('b')]),
    when: Type.String({ format: 'date' }),
    nested: Type.Object({ ok: Type.Boolean(), note: Type.Optional(Type.String({ minLength: 5 })) })
  })
  const result = await createOfflineProvider().generate({
    model: 'offline',
    system: '',
    prompt: '',
    responseSchema: schema,
    task: { agent: 'x', method: 'y', input: { topic: 'Aswan' } }
  })
  t.ok(Value.Check(schema, result.json))
  t.match(result.text, /Aswan/)
  t.ok(Value.Check(schema, sampleFromSchema(schema)))
})

t.test('plain text requests (no schema) get a labelled placeholder', async t => {
  const result = await provider.generate({ model: 'offline', system: '', prompt: 'Tell me about Siwa' })
  t.match(result.text, /^Offline mode .*Siwa/)
  t.equal(result.json, undefined)
})

t.test('builders stay schema-valid at the input limits (longest strings, most items)', async t => {
  const long = (n: number, word = 'Alexandria') => word.repeat(Math.ceil(n / word.length)).slice(0, n)
  const extremes: Array<[string, string, Record<string, unknown>]> = [
    [
      'travel',
      'searchFlights',
      { from: long(100), to: long(100, 'Ouagadougou '), date: '2030-01-01', passengers: 9, class: 'first' }
    ],
    [
      'travel',
      'searchHotels',
      { destination: long(100), checkin: '2030-01-01', checkout: '2031-01-01', guests: 20, rooms: 10 }
    ],
    [
      'travel',
      'generateItinerary',
      {
        destination: long(100),
        duration: 21,
        interests: Array.from({ length: 10 }, (_, i) => long(50, `i${i}`)),
        budget: 1_000_000,
        travelers: 20
      }
    ],
    [
      'travel',
      'getDestinationRecommendations',
      {
        budget: 0,
        interests: Array.from({ length: 10 }, () => long(50)),
        duration: 90,
        season: 'winter',
        travelers: 20
      }
    ],
    [
      'travel',
      'getVisaRequirements',
      { destination: long(100), nationality: long(100), purpose: 'transit', duration: 365 }
    ],
    [
      'content',
      'generateBlogPost',
      {
        topic: long(200),
        type: 'listicle',
        tone: 'humorous',
        length: 4000,
        keywords: Array.from({ length: 10 }, () => long(50)),
        targetAudience: long(200)
      }
    ],
    [
      'content',
      'generateSocialPosts',
      {
        topic: long(200),
        platforms: ['twitter', 'instagram', 'linkedin', 'facebook', 'tiktok', 'threads'],
        tone: 'casual',
        count: 20
      }
    ],
    ['content', 'generateVideoScript', { topic: long(200), duration: 1800, style: 'vlog', platform: 'linkedin' }],
    ['content', 'researchTopic', { topic: long(200), depth: 'deep' }],
    [
      'content',
      'generateContentCalendar',
      {
        duration: 90,
        platforms: ['twitter', 'instagram', 'linkedin', 'facebook', 'tiktok', 'threads'],
        topics: Array.from({ length: 15 }, () => long(100)),
        frequency: 'daily'
      }
    ],
    [
      'innovation',
      'generateIdeas',
      { industry: long(100), problem: long(500), target: long(200), count: 15, budget: 'high' }
    ],
    ['innovation', 'analyzeTrends', { industry: long(100), timeframe: '5-years', depth: 'deep' }],
    [
      'innovation',
      'analyzeCompetitors',
      { idea: long(2000), competitors: Array.from({ length: 10 }, () => long(100)) }
    ],
    ['innovation', 'validateIdea', { idea: long(2000), targetMarket: long(300), budget: 100_000_000, timeline: 60 }],
    ['innovation', 'createBusinessModelCanvas', { idea: long(2000), industry: long(100) }]
  ]
  for (const [agent, method, input] of extremes) {
    const definition = definitions[agent as 'travel'].methods[method]
    t.ok(Value.Check(definition.input, input), `${agent}.${method} extreme input is itself valid`)
    const built = definition.offline!(input)
    t.ok(Value.Check(definition.output, built), `${agent}.${method} output validates at the limits`)
  }
})

// Shared pieces of the agent tests: credentials, one valid input per method (all 16), the words each
// answer must echo, and a scripted "model" for the Gemini fixture that answers like the real thing —
// it recognises the method from the response schema it was sent and builds a schema-valid answer
// from the request in the prompt.
import type { Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { createAgentDefinitions } from '../../src/agents/index.js'
import type { AgentName } from '../../src/agents/types.js'
import { toProviderSchema } from '../../src/llm/json.js'
import { build, type BuildOptions } from '../support.js'
import type { GeminiReply, GeminiRequest } from '../fixtures/gemini-server.js'

export const ADMIN_KEY = 'amk_test_admin_key_0123456789abcdefghij'
export const USER_KEY = 'amk_test_user_key_0123456789abcdefghijk'
export const KEYS_ENV = { VALID_API_KEYS: `${ADMIN_KEY}:admin,${USER_KEY}:user` }
export const admin = { 'x-api-key': ADMIN_KEY }

export const definitions = createAgentDefinitions()

/** A valid input for every method, and words the answer must mention (the input echoed back). */
export const CASES: Array<{ agent: AgentName; method: string; input: Record<string, unknown>; mentions: string[] }> = [
  {
    agent: 'travel',
    method: 'searchFlights',
    input: { from: 'Cairo', to: 'Paris', date: '2030-05-01', passengers: 2 },
    mentions: ['Paris', 'Cairo']
  },
  {
    agent: 'travel',
    method: 'searchHotels',
    input: { destination: 'Lisbon', checkin: '2030-06-01', checkout: '2030-06-04', guests: 2 },
    mentions: ['Lisbon']
  },
  {
    agent: 'travel',
    method: 'generateItinerary',
    input: { destination: 'Kyoto', duration: 3, interests: ['temples', 'food'], budget: 1500 },
    mentions: ['Kyoto']
  },
  {
    agent: 'travel',
    method: 'getDestinationRecommendations',
    input: { budget: 3000, interests: ['food', 'history'], duration: 7, season: 'spring' },
    mentions: ['food']
  },
  {
    agent: 'travel',
    method: 'getVisaRequirements',
    input: { destination: 'Japan', nationality: 'Egyptian', duration: 10 },
    mentions: ['Japan', 'Egyptian']
  },
  {
    agent: 'travel',
    method: 'createCompletePackage',
    input: {
      destination: 'Rome',
      from: 'Berlin',
      date: '2030-09-10',
      duration: 4,
      travelers: 2,
      interests: ['art'],
      nationality: 'German'
    },
    mentions: ['Rome', 'Berlin', 'German']
  },
  {
    agent: 'content',
    method: 'generateBlogPost',
    input: { topic: 'Budget travel in Vietnam', keywords: ['hanoi', 'street food'], length: 600 },
    mentions: ['Vietnam']
  },
  {
    agent: 'content',
    method: 'generateSocialPosts',
    input: { topic: 'Our new Nile cruise', platforms: ['twitter', 'linkedin'], count: 3 },
    mentions: ['Nile cruise']
  },
  {
    agent: 'content',
    method: 'generateVideoScript',
    input: { topic: 'Three days in Luxor', duration: 120, platform: 'tiktok' },
    mentions: ['Luxor']
  },
  {
    agent: 'content',
    method: 'researchTopic',
    input: { topic: 'Sustainable tourism in Egypt', depth: 'quick' },
    mentions: ['Sustainable tourism in Egypt']
  },
  {
    agent: 'content',
    method: 'generateContentCalendar',
    input: {
      duration: 14,
      platforms: ['instagram'],
      topics: ['desert safaris', 'red sea diving'],
      frequency: 'twice-weekly'
    },
    mentions: ['desert safaris']
  },
  {
    agent: 'innovation',
    method: 'generateIdeas',
    input: { industry: 'travel', problem: 'finding halal food abroad', count: 3 },
    mentions: ['halal food']
  },
  {
    agent: 'innovation',
    method: 'analyzeTrends',
    input: { industry: 'ecotourism', timeframe: '3-years' },
    mentions: ['ecotourism']
  },
  {
    agent: 'innovation',
    method: 'analyzeCompetitors',
    input: { idea: 'A marketplace for local tour guides in Africa', competitors: ['GetYourGuide', 'Viator'] },
    mentions: ['GetYourGuide', 'Viator']
  },
  {
    agent: 'innovation',
    method: 'validateIdea',
    input: {
      idea: 'Subscription boxes of Egyptian spices',
      targetMarket: 'home cooks in Europe',
      budget: 20000,
      timeline: 6
    },
    mentions: ['Egyptian spices']
  },
  {
    agent: 'innovation',
    method: 'createBusinessModelCanvas',
    input: { idea: 'An AI concierge for boutique hotels', industry: 'hospitality' },
    mentions: ['boutique hotels']
  }
]

export const auth = (extra: Record<string, string> = {}) => ({ ...admin, ...extra })

/** Builds the app with the test API keys (plus env overrides). */
export async function buildApp (t: Test, options: BuildOptions = {}): Promise<FastifyInstance> {
  return build(t, { ...options, env: { ...KEYS_ENV, ...options.env } })
}

export function invoke (
  app: FastifyInstance,
  agent: string,
  method: string,
  input: unknown,
  headers: Record<string, string> = {}
) {
  return app.inject({
    method: 'POST',
    url: `/api/agents/${agent}/${method}`,
    headers: auth(headers),
    payload: input as object
  })
}

/** The method whose output schema (as sent to Gemini) matches the request. */
export function methodOf (request: GeminiRequest) {
  const sent = JSON.stringify(request.body.generationConfig?.responseJsonSchema)
  for (const definition of Object.values(definitions)) {
    for (const method of Object.values(definition.methods)) {
      if (JSON.stringify(toProviderSchema(method.output)) === sent) return { agent: definition.name, method }
    }
  }
  throw new Error('the request carried no known response schema')
}

/** The request fields and context the prompt carries (see src/agents/prompt.ts). */
export function inputOf (request: GeminiRequest): Record<string, unknown> {
  const fields = /Request \(JSON\):\n([\s\S]*?)\n\n/.exec(request.prompt)
  if (!fields) throw new Error('the prompt carried no request JSON')
  const input = JSON.parse(fields[1]) as Record<string, unknown>
  const context = /Context from earlier steps[^\n]*\n(.*)\n/.exec(request.prompt)
  if (context) input.context = JSON.parse(context[1])
  return input
}

/** A fixture responder that answers every method like a well-behaved model. */
export function modelAnswer (request: GeminiRequest): GeminiReply {
  const { method } = methodOf(request)
  return { json: method.offline!(inputOf(request)) }
}

/** A redis-server of our own on a free port (nothing persisted), to kill in the middle of a test. */
export async function ownRedis (t: Test): Promise<{ url: string, stop(): Promise<void> }> {
  const { spawn } = await import('node:child_process')
  const net = await import('node:net')
  const port = await new Promise<number>((resolve, reject) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as import('node:net').AddressInfo
      probe.close(() => resolve(port))
    }).on('error', reject)
  })
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' }
  )
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise(resolve => child.once('exit', resolve))
    child.kill('SIGKILL')
    await exited
  }
  t.teardown(stop)
  for (let i = 0; ; i++) {
    const up = await new Promise<boolean>(resolve => {
      const socket = net.connect(port, '127.0.0.1', () => { socket.end(); resolve(true) })
      socket.on('error', () => resolve(false))
    })
    if (up) break
    if (i > 100) throw new Error('redis-server did not start')
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  return { url: `redis://127.0.0.1:${port}`, stop }
}

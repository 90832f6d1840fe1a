// Shared pieces of the stream tests: credentials (two premium callers, an admin, a user), the four
// stream routes with a valid input each, a check of the §8 event contract on a whole stream, and
// listening apps (streams need real sockets for disconnects and backpressure).
import type { Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import type { AddressInfo } from 'node:net'
import { build, type BuildOptions } from '../support.js'
import type { Frame } from './sse-client.js'
import type { GeminiRequest } from '../fixtures/gemini-server.js'
import { modelAnswer } from '../agents/support.js'
import { LazyAbortController } from '../../src/agents/call-abort.js'
import type { MemoryEventLog } from '../../src/streams/memory-event-log.js'
import type { Session } from '../../src/streams/sessions.js'

export const PREMIUM_KEY = 'amk_stream_premium_key_0123456789abc'
export const OTHER_KEY = 'amk_stream_other_premium_key_0123456'
export const ADMIN_KEY = 'amk_stream_admin_key_0123456789abcdef'
export const USER_KEY = 'amk_stream_user_key_0123456789abcdefg'
export const premium = { 'x-api-key': PREMIUM_KEY }
export const other = { 'x-api-key': OTHER_KEY }
export const admin = { 'x-api-key': ADMIN_KEY }
export const user = { 'x-api-key': USER_KEY }

export const STREAM_ENV: Record<string, string> = {
  VALID_API_KEYS: `${PREMIUM_KEY}:premium,${OTHER_KEY}:premium,${ADMIN_KEY}:admin,${USER_KEY}:user`,
  // The stream tests open many streams a minute; rate limits have their own tests.
  RATE_LIMIT_EXEMPT_ROLES: 'premium,admin,internal',
  STREAM_RETRY_MS: '100'
}

export type RouteName = 'blog' | 'itinerary' | 'recommendations' | 'social'
export const ROUTES: Record<
  RouteName,
  { agent: string; method: string; input: Record<string, unknown>; query: string }
> = {
  blog: {
    agent: 'content',
    method: 'generateBlogPost',
    input: { topic: 'Budget travel in Vietnam', keywords: ['hanoi', 'street food'], length: 600 },
    query: 'topic=Budget+travel+in+Vietnam&keywords=hanoi,street+food&length=600'
  },
  itinerary: {
    agent: 'travel',
    method: 'generateItinerary',
    input: { destination: 'Kyoto', duration: 3, interests: ['temples', 'food'], budget: 1500 },
    query: 'destination=Kyoto&duration=3&interests=temples&interests=food&budget=1500'
  },
  recommendations: {
    agent: 'travel',
    method: 'getDestinationRecommendations',
    input: { budget: 3000, interests: ['food', 'history'], duration: 7, season: 'spring' },
    query: 'budget=3000&interests=food,history&duration=7&season=spring'
  },
  social: {
    agent: 'content',
    method: 'generateSocialPosts',
    input: { topic: 'Our new Nile cruise', platforms: ['twitter', 'linkedin'], count: 3 },
    query: 'topic=Our+new+Nile+cruise&platforms=twitter,linkedin&count=3'
  }
}

/** A Gemini answer that streams its first 3 chunks of a valid answer, then stalls until the client goes away. */
export const stalling = (request: GeminiRequest) =>
  ({ text: JSON.stringify((modelAnswer(request) as { json: unknown }).json), chunks: 20, stallAfter: 3 })

export async function buildStreams (t: Test, options: BuildOptions = {}): Promise<FastifyInstance> {
  return build(t, { ...options, env: { ...STREAM_ENV, ...options.env } })
}

/** The app listening on 127.0.0.1 (closed by build's teardown); its base URL. */
export async function listen (app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' })
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
}

export const seqOf = (frame: Frame) => Number(frame.id!.slice(frame.id!.lastIndexOf('-') + 1))

/**
 * The §8 contract on one complete stream: connected first, progress, tokens, the route's item events,
 * result, usage, complete last; ids `<streamId>-1…n` with no gap; tokens concatenate to the final text.
 */
export function checkStream (t: Test, frames: Frame[], route: RouteName): { streamId: string, result: any } {
  t.equal(frames[0]?.event, 'connected', 'connected first')
  const streamId = frames[0].data.streamId
  t.match(frames[0].data, { streamId: /^st_[0-9a-f]{24}$/, agent: ROUTES[route].agent, method: ROUTES[route].method })
  t.same(
    frames.map(f => f.id),
    frames.map((_f, i) => `${streamId}-${i + 1}`),
    'ids <streamId>-<seq>, strictly increasing from 1 without gaps'
  )
  t.equal(frames.at(-1)?.event, 'complete', 'complete last')
  const events = frames.map(f => f.event)
  t.ok(events.includes('progress'), 'progress events')
  t.equal(frames.find(f => f.event === 'progress')?.data.progress, 0)
  t.equal(frames.filter(f => f.event === 'progress').at(-1)?.data.progress, 100)
  const tokens = frames.filter(f => f.event === 'token')
  t.ok(tokens.length > 1, `${tokens.length} token events`)
  t.same(tokens.map(f => f.data.index), tokens.map((_f, i) => i), 'token indexes 0…n-1')
  const result = frames.find(f => f.event === 'result')?.data.data
  t.ok(result, 'result event')
  t.same(JSON.parse(tokens.map(f => f.data.chunk).join('')), result, 'the tokens concatenate to the final text')
  const usage = frames.find(f => f.event === 'usage')?.data
  t.ok(usage && usage.inputTokens > 0 && usage.outputTokens > 0, 'usage event')
  t.same(frames.at(-1)!.data.usage, usage, 'complete carries the usage')
  t.ok(events.indexOf('result') < events.indexOf('usage') && events.indexOf('usage') < events.indexOf('complete'))
  const partials = frames.filter(f => f.event === 'partial').map(f => f.data.data)
  const posts = frames.filter(f => f.event === 'post').map(f => f.data)
  if (route === 'recommendations') {
    t.same(partials, result.recommendations, 'one partial per recommendation, in order')
    t.ok(events.indexOf('partial') < events.lastIndexOf('token'), 'the first partial arrives while tokens still stream')
  } else t.equal(partials.length, 0)
  if (route === 'social') {
    t.same(
      posts,
      result.posts.map((p: any, index: number) => ({ platform: p.platform, content: p.content, index })),
      'one post event per post'
    )
    t.ok(events.indexOf('post') < events.lastIndexOf('token'), 'the first post arrives while tokens still stream')
  } else t.equal(posts.length, 0)
  return { streamId, result }
}

/** Polls until `probe` returns something truthy. */
export async function until<T> (
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  intervalMs = 10
): Promise<T> {
  for (;;) {
    const value = await probe()
    if (value) return value
    await new Promise(resolve => setTimeout(resolve, intervalMs))
  }
}

/** Resolves with the promise's value, or with `fallback` after `ms` (for "within one second" checks). */
export function within<T, F> (promise: Promise<T>, ms: number, fallback: F): Promise<T | F> {
  let timer: NodeJS.Timeout
  return Promise.race([
    promise,
    new Promise<F>(resolve => {
      timer = setTimeout(() => resolve(fallback), ms)
    })
  ]).finally(() => clearTimeout(timer))
}

/** A blog post of `sections` × `chars` characters: a large, schema-valid answer. */
export function bigBlogPost (sections = 15, chars = 9000) {
  const paragraph = 'Hanoi street food at dawn: pho stalls, banh mi carts and egg coffee. '
  return {
    headline: 'A very long guide to budget travel in Vietnam',
    metaDescription: 'Everything about budget travel in Vietnam.',
    slug: 'budget-travel-in-vietnam',
    sections: Array.from({ length: sections }, (_v, i) => ({
      heading: `Part ${i + 1}`,
      content: paragraph.repeat(Math.ceil(chars / paragraph.length)).slice(0, chars)
    })),
    faq: [{ question: 'Is it cheap?', answer: 'Yes.' }],
    seo: { keywords: ['vietnam', 'budget'], readingTimeMinutes: 60 },
    socialSnippets: { twitter: 'Vietnam on a budget', linkedin: 'Vietnam on a budget' },
    wordCount: Math.round((sections * chars) / 6)
  }
}

/** A running content.generateBlogPost session of caller `c`, its stream created in `log` (for runGeneration). */
export async function blogSession (log: MemoryEventLog, streamId: string): Promise<Session> {
  const session: Session = {
    streamId,
    agent: 'content',
    method: 'generateBlogPost',
    callerId: 'c',
    onDisconnect: 'cancel',
    startedAt: Date.now(),
    abort: new LazyAbortController(),
    status: 'running',
    connections: 0,
    done: Promise.resolve()
  }
  await log.create({
    streamId,
    ownerId: 'c',
    agent: 'content',
    method: 'generateBlogPost',
    createdAt: Date.now(),
    onDisconnect: 'cancel',
    instanceId: 'here'
  })
  return session
}

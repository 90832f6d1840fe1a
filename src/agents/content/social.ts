// content.generateSocialPosts: platform-specific posts about one topic.
import { Type, type Static } from 'typebox'
import { Choice, Input, Output, Strings, Text } from '../schema-kit.js'
import { buildPrompt, SYSTEM } from '../prompt.js'
import { clip, pick, seedOf } from '../offline-kit.js'
import { defineMethod } from '../types.js'
import { TONES } from './blog.js'

export const PLATFORMS = ['twitter', 'instagram', 'linkedin', 'facebook', 'tiktok', 'threads'] as const
const LIMITS: Record<string, number> = {
  twitter: 280,
  threads: 500,
  instagram: 2200,
  linkedin: 3000,
  facebook: 5000,
  tiktok: 2200
}

export const SocialPostsInput = Input(
  {
    topic: Text(3, 200, 'What the posts promote or discuss', { examples: ['Our new Nile cruise itinerary'] }),
    platforms: Type.Array(Type.Enum([...PLATFORMS]), {
      minItems: 1,
      maxItems: 6,
      uniqueItems: true,
      default: ['twitter', 'instagram', 'linkedin']
    }),
    tone: Choice(TONES, 'Voice', 'engaging'),
    count: Type.Integer({
      minimum: 1,
      maximum: 20,
      default: 5,
      description: 'Posts in total, spread over the platforms'
    })
  },
  'Social posts request'
)

export const SocialPostsOutput = Output({
  topic: Type.String(),
  posts: Type.Array(Type.Object({
    platform: Type.Enum([...PLATFORMS]),
    content: Type.String({ maxLength: 5000 }),
    hashtags: Strings(15, 'Without or with #'),
    characterCount: Type.Integer({ minimum: 0 }),
    bestTimeToPost: Type.String({ maxLength: 100 })
  }, { additionalProperties: false }), { minItems: 1, maxItems: 20 }),
  strategy: Type.String({ maxLength: 1000 })
}, 'Posts per platform')

type In = Static<typeof SocialPostsInput>
type Out = Static<typeof SocialPostsOutput>

const OPENERS = [
  'Here is the thing about',
  'Quick thought on',
  'Did you know this about',
  'Three reasons to care about',
  'Behind the scenes of',
  'What we learned from'
]
const TIMES: Record<string, string> = {
  twitter: 'Weekdays 9–11am',
  instagram: 'Evenings 7–9pm',
  linkedin: 'Tue–Thu 8–10am',
  facebook: 'Weekdays 1–3pm',
  tiktok: 'Evenings 6–10pm',
  threads: 'Weekdays 11am–1pm'
}

function offline (input: In): Out {
  const seed = seedOf(input.topic.toLowerCase())
  const tags = input.topic
    .split(/\s+/)
    .filter(w => w.length > 3)
    .slice(0, 3)
    .map(w => `#${w.replace(/\W+/g, '').toLowerCase()}`)
  const posts = Array.from({ length: input.count }, (_, i) => {
    const platform = input.platforms[i % input.platforms.length]
    const pitch = platform === 'linkedin'
      ? 'what it means for your team and the results to expect.'
      : 'worth a look, and here is why.'
    const body = `${pick(OPENERS, seed, i)} ${input.topic}: ${pitch}`
    const content = clip(`${body} ${tags.join(' ')}`, LIMITS[platform])
    return { platform, content, hashtags: tags, characterCount: content.length, bestTimeToPost: TIMES[platform] }
  })
  return {
    topic: input.topic,
    posts,
    strategy: `Offline draft: ${input.count} ${input.tone} post(s) about ${input.topic}, ` +
      `rotated across ${input.platforms.join(', ')}.`
  }
}

export const generateSocialPosts = defineMethod({
  name: 'generateSocialPosts',
  summary: 'Platform-specific social media posts with hashtags and posting times',
  input: SocialPostsInput,
  output: SocialPostsOutput,
  cacheTtl: 1800,
  rateLimit: 10,
  temperature: 0.9,
  prompt: input => ({
    system: SYSTEM.content,
    prompt: buildPrompt(`Write ${input.count} social media posts about "${input.topic}".`, input, [
      'Spread the posts over the requested platforms and respect ' +
        "each platform's length and style (Twitter/X ≤ 280 characters).",
      'characterCount is the length of content.'
    ])
  }),
  offline,
  streamItems: { event: 'post', property: 'posts' }
})

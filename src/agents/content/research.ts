// content.researchTopic and content.generateContentCalendar: a research brief and a publishing plan.
import { Type, type Static } from 'typebox'
import { Choice, Estimate, Input, Output, Strings, Text, TextList } from '../schema-kit.js'
import { buildPrompt, SYSTEM } from '../prompt.js'
import { pick, seedOf } from '../offline-kit.js'
import { defineMethod } from '../types.js'
import { PLATFORMS } from './social.js'

const DEPTHS = ['quick', 'standard', 'deep'] as const

export const ResearchInput = Input({
  topic: Text(3, 200, 'Topic to research', { examples: ['Sustainable tourism in Egypt'] }),
  depth: Choice(DEPTHS, 'How thorough', 'standard')
}, 'Research request')

export const ResearchOutput = Output(
  {
    topic: Type.String(),
    summary: Type.String({ maxLength: 3000 }),
    keyPoints: Strings(15, 'Main findings'),
    subtopics: Type.Array(
      Type.Object(
        { name: Type.String({ maxLength: 150 }), summary: Type.String({ maxLength: 1000 }) },
        { additionalProperties: false }
      ),
      { maxItems: 10 }
    ),
    openQuestions: Strings(10, 'What remains uncertain'),
    suggestedSources: Strings(10, 'Kinds of sources to consult (no invented citations)'),
    confidence: Type.Enum(['low', 'medium', 'high']),
    source: Estimate
  },
  "A research brief from the model's knowledge; verify facts before publishing"
)

function researchOffline (input: Static<typeof ResearchInput>): Static<typeof ResearchOutput> {
  const angles = [
    'Background and definitions',
    'Current state',
    'Key players',
    'Challenges',
    'Opportunities',
    'Outlook'
  ]
  const count = input.depth === 'quick' ? 3 : input.depth === 'standard' ? 4 : 6
  return {
    topic: input.topic,
    summary:
      `Offline brief on ${input.topic}: an outline of what to research, not findings. ` +
      'Connect a model for substance.',
    keyPoints: angles.slice(0, count).map(a => `${a} of ${input.topic}`),
    subtopics: angles
      .slice(0, count)
      .map(name => ({ name, summary: `What to establish about ${input.topic}: ${name.toLowerCase()}.` })),
    openQuestions: [
      `What recent data exists on ${input.topic}?`,
      `Who are the most credible experts on ${input.topic}?`
    ],
    suggestedSources: [
      'Peer-reviewed journals',
      'Official statistics offices',
      'Industry association reports',
      'Reputable news outlets'
    ],
    confidence: 'low',
    source: 'llm-estimate'
  }
}

export const researchTopic = defineMethod({
  name: 'researchTopic',
  summary: 'A research brief: summary, key points, subtopics and open questions',
  input: ResearchInput,
  output: ResearchOutput,
  cacheTtl: 7200,
  rateLimit: 30,
  temperature: 0.4,
  prompt: (input) => ({
    system: SYSTEM.content,
    prompt: buildPrompt(`Research "${input.topic}" at ${input.depth} depth.`, input, [
      'Separate established facts from uncertainty; put the uncertain parts in openQuestions.',
      'suggestedSources names kinds of sources or well-known institutions; never invent titles, URLs or citations.',
      'source is "llm-estimate".'
    ])
  }),
  offline: researchOffline
})

const FREQUENCIES = ['daily', 'every-other-day', 'twice-weekly', 'weekly'] as const
const STEP: Record<string, number> = { daily: 1, 'every-other-day': 2, 'twice-weekly': 3, weekly: 7 }

export const CalendarInput = Input(
  {
    duration: Type.Integer({ minimum: 7, maximum: 90, default: 30, description: 'Days covered' }),
    platforms: Type.Array(Type.Enum([...PLATFORMS]), {
      minItems: 1,
      maxItems: 6,
      uniqueItems: true,
      default: ['twitter', 'instagram', 'linkedin']
    }),
    topics: TextList(15, 100, 'Themes to rotate', { minItems: 1 }),
    frequency: Choice(FREQUENCIES, 'How often to post', 'twice-weekly')
  },
  'Content calendar request'
)

export const CalendarOutput = Output({
  duration: Type.Integer({ minimum: 1 }),
  frequency: Type.String(),
  entries: Type.Array(Type.Object({
    day: Type.Integer({ minimum: 1, description: 'Day number from the start' }),
    platform: Type.Enum([...PLATFORMS]),
    topic: Type.String({ maxLength: 100 }),
    format: Type.String({ maxLength: 50 }),
    idea: Type.String({ maxLength: 500 })
  }, { additionalProperties: false }), { minItems: 1, maxItems: 120 }),
  weeklyThemes: Strings(13, 'One theme per week'),
  tips: Strings(8, 'Execution tips')
}, 'A publishing plan by day number')

const FORMATS = ['Carousel', 'Short video', 'Thread', 'Photo', 'Poll', 'Article', 'Story']

function calendarOffline (input: Static<typeof CalendarInput>): Static<typeof CalendarOutput> {
  const seed = seedOf(input.topics.join('|').toLowerCase())
  const entries = []
  for (let day = 1, n = 0; day <= input.duration && entries.length < 120; day += STEP[input.frequency], n++) {
    const topic = input.topics[n % input.topics.length]
    const platform = input.platforms[n % input.platforms.length]
    const format = pick(FORMATS, seed, n)
    entries.push({ day, platform, topic, format, idea: `${format} on ${platform}: one practical angle on ${topic}.` })
  }
  const weeks = Math.ceil(input.duration / 7)
  return {
    duration: input.duration,
    frequency: input.frequency,
    entries,
    weeklyThemes: Array.from(
      { length: Math.min(13, weeks) },
      (_, w) => `Week ${w + 1}: ${input.topics[w % input.topics.length]}`
    ),
    tips: ['Batch-produce a week of posts at once.', 'Reuse each long piece as several short posts.']
  }
}

export const generateContentCalendar = defineMethod({
  name: 'generateContentCalendar',
  summary: 'A content calendar: what to post where, day by day',
  input: CalendarInput,
  output: CalendarOutput,
  cacheTtl: 86400,
  rateLimit: 30,
  temperature: 0.7,
  prompt: (input) => ({
    system: SYSTEM.content,
    prompt: buildPrompt(`Plan ${input.duration} days of content, posting ${input.frequency}.`, input, [
      'Days are numbered from 1; rotate the topics and platforms; vary formats.',
      'At most 120 entries; one weekly theme per week.'
    ])
  }),
  offline: calendarOffline
})

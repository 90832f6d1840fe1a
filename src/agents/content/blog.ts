// content.generateBlogPost: a structured, SEO-ready article.
import { Type, type Static } from 'typebox'
import { Choice, Input, Output, Strings, Text, TextList } from '../schema-kit.js'
import { buildPrompt, SYSTEM } from '../prompt.js'
import { clip, pick, seedOf, slugify, titleCase, words } from '../offline-kit.js'
import { defineMethod } from '../types.js'

export const BLOG_TYPES = ['how-to', 'listicle', 'guide', 'review', 'opinion', 'news'] as const
export const TONES = [
  'professional',
  'casual',
  'friendly',
  'authoritative',
  'humorous',
  'inspirational',
  'engaging'
] as const

export const BlogPostInput = Input({
  topic: Text(3, 200, 'What the post is about', { examples: ['Visiting Cairo on a budget'] }),
  type: Choice(BLOG_TYPES, 'Kind of post', 'how-to'),
  tone: Choice(TONES, 'Voice', 'professional'),
  length: Type.Integer({ minimum: 300, maximum: 4000, default: 1200, description: 'Target length in words' }),
  keywords: TextList(10, 50, 'SEO keywords to use naturally', { default: [] }),
  targetAudience: Text(2, 200, 'Who reads it', { default: 'general readers' })
}, 'Blog post request')

export const BlogPostOutput = Output(
  {
    headline: Type.String({ maxLength: 150 }),
    metaDescription: Type.String({ maxLength: 170 }),
    slug: Type.String({ maxLength: 100 }),
    sections: Type.Array(
      Type.Object(
        {
          heading: Type.String({ maxLength: 150 }),
          content: Type.String({ maxLength: 10000 })
        },
        { additionalProperties: false }
      ),
      { minItems: 1, maxItems: 15 }
    ),
    faq: Type.Array(
      Type.Object(
        { question: Type.String({ maxLength: 300 }), answer: Type.String({ maxLength: 1500 }) },
        { additionalProperties: false }
      ),
      { maxItems: 8 }
    ),
    seo: Type.Object(
      {
        keywords: Strings(15, 'Keywords used'),
        readingTimeMinutes: Type.Integer({ minimum: 1 })
      },
      { additionalProperties: false }
    ),
    socialSnippets: Type.Object(
      { twitter: Type.String({ maxLength: 280 }), linkedin: Type.String({ maxLength: 700 }) },
      { additionalProperties: false }
    ),
    wordCount: Type.Integer({ minimum: 0 })
  },
  'A blog post, split into sections'
)

type In = Static<typeof BlogPostInput>
type Out = Static<typeof BlogPostOutput>

const ANGLES = [
  'Why it matters',
  'Getting started',
  'Common mistakes to avoid',
  'A step-by-step approach',
  'Tools and resources',
  'What experts recommend',
  'Real-world examples',
  'Measuring success'
]

function offline (input: In): Out {
  const seed = seedOf(input.topic.toLowerCase())
  const count = Math.min(8, Math.max(3, Math.round(input.length / 250)))
  const keywords =
    input.keywords.length > 0
      ? input.keywords
      : input.topic
        .toLowerCase()
        .split(/\s+/)
        .filter(w => w.length > 3)
        .slice(0, 4)
  const perSection = Math.max(40, Math.round(input.length / (count + 1)))
  const sentence = (heading: string, i: number) =>
    `${heading} is central to ${input.topic.toLowerCase()} for ${input.targetAudience}. ` +
    `This part looks at ${keywords[i % Math.max(1, keywords.length)] ?? input.topic} in a ${input.tone} way, ` +
    'with concrete steps you can apply today.'
  const sections = [
    { heading: 'Introduction', content: '' },
    ...Array.from({ length: count - 1 }, (_, i) => ({ heading: pick(ANGLES, seed, i), content: '' }))
  ].filter((s, i, all) => all.findIndex(o => o.heading === s.heading) === i)
  for (const [i, section] of sections.entries()) {
    const paragraph: string[] = []
    while (words(paragraph.join(' ')) < perSection && paragraph.join(' ').length < 8000) {
      paragraph.push(sentence(section.heading, i + paragraph.length))
    }
    section.content = clip(paragraph.join(' '), 10000)
  }
  const opening = input.type === 'listicle'
    ? `${count} Things to Know About`
    : input.type === 'how-to' ? 'How to Approach' : 'A Guide to'
  const headline = clip(`${opening} ${titleCase(input.topic)}`, 150)
  const wordCount = sections.reduce((sum, s) => sum + words(s.content), 0)
  return {
    headline,
    metaDescription: clip(
      `${titleCase(input.topic)}: a ${input.type} for ${input.targetAudience}, covering ${sections
        .slice(1, 4)
        .map(s => s.heading.toLowerCase())
        .join(', ')}.`,
      160
    ),
    slug: slugify(input.topic),
    sections,
    faq: [
      {
        question: `What is the first step with ${input.topic}?`,
        answer: `Start with the basics in "${sections[1]?.heading ?? 'Getting started'}" and set one measurable goal.`
      },
      { question: `Who is this ${input.type} for?`, answer: `It is written for ${input.targetAudience}.` }
    ],
    seo: { keywords, readingTimeMinutes: Math.max(1, Math.round(wordCount / 220)) },
    socialSnippets: {
      twitter: clip(`New post: ${headline}. ${keywords.map(k => `#${k.replace(/\W+/g, '')}`).join(' ')}`, 280),
      linkedin: clip(
        `We just published "${headline}", a ${input.type} on ${input.topic} for ${input.targetAudience}.`,
        700
      )
    },
    wordCount
  }
}

export const generateBlogPost = defineMethod({
  name: 'generateBlogPost',
  summary: 'A structured blog post with SEO metadata, FAQ and social snippets',
  input: BlogPostInput,
  output: BlogPostOutput,
  cacheTtl: 3600,
  rateLimit: 5,
  temperature: 0.9,
  prompt: (input) => ({
    system: SYSTEM.content,
    prompt: buildPrompt(`Write a ${input.type} blog post about "${input.topic}".`, input, [
      `About ${input.length} words in total across sections, in a ${input.tone} tone for ${input.targetAudience}.`,
      'Use the keywords naturally; metaDescription ≤ 160 characters; slug is lowercase-hyphenated.',
      'wordCount is the number of words in all section contents.'
    ])
  }),
  offline
})

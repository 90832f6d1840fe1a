// content.generateVideoScript: a timed script with scenes, narration and visuals.
import { Type, type Static } from 'typebox'
import { Choice, Input, Output, Strings, Text } from '../schema-kit.js'
import { buildPrompt, SYSTEM } from '../prompt.js'
import { clip, titleCase } from '../offline-kit.js'
import { defineMethod } from '../types.js'

const STYLES = ['educational', 'entertaining', 'tutorial', 'documentary', 'promotional', 'vlog'] as const
const VIDEO_PLATFORMS = ['youtube', 'tiktok', 'instagram', 'linkedin', 'facebook'] as const

export const VideoScriptInput = Input({
  topic: Text(3, 200, 'What the video is about', { examples: ['Three days in Luxor'] }),
  duration: Type.Integer({ minimum: 15, maximum: 1800, default: 300, description: 'Target length in seconds' }),
  style: Choice(STYLES, 'Style', 'educational'),
  platform: Choice(VIDEO_PLATFORMS, 'Where it will be published', 'youtube')
}, 'Video script request')

export const VideoScriptOutput = Output(
  {
    title: Type.String({ maxLength: 150 }),
    hook: Type.String({ maxLength: 500 }),
    script: Type.Array(
      Type.Object(
        {
          timestamp: Type.String({ maxLength: 10, description: 'mm:ss from the start' }),
          durationSeconds: Type.Integer({ minimum: 1 }),
          scene: Type.String({ maxLength: 200 }),
          narration: Type.String({ maxLength: 3000 }),
          visuals: Type.String({ maxLength: 1000 })
        },
        { additionalProperties: false }
      ),
      { minItems: 1, maxItems: 40 }
    ),
    callToAction: Type.String({ maxLength: 300 }),
    thumbnail: Type.Object(
      { concept: Type.String({ maxLength: 300 }), text: Type.String({ maxLength: 60 }) },
      { additionalProperties: false }
    ),
    seo: Type.Object(
      { description: Type.String({ maxLength: 5000 }), tags: Strings(20, 'Tags') },
      { additionalProperties: false }
    ),
    totalDurationSeconds: Type.Integer({ minimum: 1 })
  },
  'A timed video script'
)

type In = Static<typeof VideoScriptInput>
type Out = Static<typeof VideoScriptOutput>

const mmss = (seconds: number) =>
  `${String(Math.floor(seconds / 60)).padStart(2, '0')}:${String(seconds % 60).padStart(2, '0')}`

function offline (input: In): Out {
  const scenes = ['Hook', 'Context', 'Main point', 'Example', 'Recap', 'Call to action']
  const count = input.duration < 60 ? 3 : input.duration < 300 ? 4 : 6
  const chosen =
    count === 3
      ? ['Hook', 'Main point', 'Call to action']
      : count === 4
        ? ['Hook', 'Main point', 'Example', 'Call to action']
        : scenes
  const each = Math.floor(input.duration / chosen.length)
  let at = 0
  const script = chosen.map((scene, i) => {
    const length = i === chosen.length - 1 ? input.duration - at : each
    const part = {
      timestamp: mmss(at),
      durationSeconds: Math.max(1, length),
      scene,
      narration: `${scene}: ${input.topic}, told in a ${input.style} way for ${input.platform}.`,
      visuals: `${scene === 'Hook' ? 'Fast cut, bold caption' : 'B-roll and on-screen text'} about ${input.topic}`
    }
    at += length
    return part
  })
  return {
    title: clip(titleCase(input.topic), 150),
    hook: `In the next ${Math.round(input.duration / 60) || 1} minute(s): ` +
      `everything you need to know about ${input.topic}.`,
    script,
    callToAction:
      input.platform === 'youtube'
        ? 'Subscribe for the next episode and tell us your questions in the comments.'
        : 'Follow for more and share this with a friend.',
    thumbnail: {
      concept: `Close-up related to ${input.topic} with high-contrast text`,
      text: clip(titleCase(input.topic), 60)
    },
    seo: {
      description: `A ${input.style} video about ${input.topic}.`,
      tags: input.topic
        .toLowerCase()
        .split(/\s+/)
        .filter(w => w.length > 2)
        .slice(0, 8)
    },
    totalDurationSeconds: script.reduce((sum, s) => sum + s.durationSeconds, 0)
  }
}

export const generateVideoScript = defineMethod({
  name: 'generateVideoScript',
  summary: 'A timed video script with scenes, narration, visuals, thumbnail and SEO',
  input: VideoScriptInput,
  output: VideoScriptOutput,
  cacheTtl: 3600,
  rateLimit: 5,
  temperature: 0.9,
  prompt: input => ({
    system: SYSTEM.content,
    prompt: buildPrompt(
      `Write a ${input.duration}-second ${input.style} video script for ${input.platform} about "${input.topic}".`,
      input,
      [
        'Scenes are consecutive; durationSeconds adds up to totalDurationSeconds, close to the requested duration.',
        'The first scene hooks the viewer within 5 seconds.'
      ]
    )
  }),
  offline
})

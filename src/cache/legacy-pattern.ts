// Cache-clear patterns, including the Express service's. Its route cleared `<agent>:*` by default and
// its AgentCacheManager keyed entries `agent:<agent>:<operation id>:<hash>`; here an agent's keys are
// `<method>:<input hash>` inside the agent's namespace (response-cache.ts). Old patterns are translated
// where the meaning is clear; a pattern that names another agent, the old RedisCache (`amrikyy:…`) or
// no method of the agent is refused with a hint, so a clear never reports a silent 0 for a wrong form.

/** The Express service's operation ids (AgentCacheManager) and the methods they were cached for. */
export const LEGACY_OPERATIONS: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  travel: {
    flight_search: 'searchFlights',
    hotel_search: 'searchHotels',
    itinerary_planning: 'generateItinerary',
    destination_recommendations: 'getDestinationRecommendations',
    visa_requirements: 'getVisaRequirements',
    complete_package: 'createCompletePackage'
  },
  content: {
    blog_post: 'generateBlogPost',
    social_posts: 'generateSocialPosts',
    video_script: 'generateVideoScript',
    content_calendar: 'generateContentCalendar',
    research: 'researchTopic'
  },
  innovation: {
    idea_generation: 'generateIdeas',
    trend_analysis: 'analyzeTrends',
    competitive_analysis: 'analyzeCompetitors',
    idea_validation: 'validateIdea',
    business_model_canvas: 'createBusinessModelCanvas'
  }
}

export type PatternOutcome =
  | { ok: true, pattern: string, translatedFrom?: string }
  | { ok: false, message: string }

export interface PatternContext {
  agent: string
  methods: readonly string[]
  agents: readonly string[]
}

const GLOB_CHARS = /[*?[]/

/** The text before the first glob character: every key the pattern matches starts with it. */
const literalPrefix = (pattern: string) => pattern.split(GLOB_CHARS)[0]

/** The glob to clear for `input` (absent = everything), or the reason it is refused. */
export function cachePattern (input: string | undefined, context: PatternContext): PatternOutcome {
  const { agent, methods, agents } = context
  if (input === undefined) return { ok: true, pattern: '*' }
  const accepted = `a glob on <method>:<input hash> inside the agent, e.g. "*" or "${methods[0] ?? 'method'}*"`
  if (input.startsWith('amrikyy:')) {
    return {
      ok: false,
      message:
        `"${input}" is a key of the Express service's RedisCache, which this service does not have; send ${accepted}`
    }
  }
  const segments = input.replace(/^agent:/, '').split(':')
  let rest = segments
  if (segments.length > 1 && segments[0] !== agent && agents.includes(segments[0])) {
    return {
      ok: false,
      message:
        `"${input}" names agent ${segments[0]}: use POST /api/agents/${segments[0]}/cache/clear; here send ${accepted}`
    }
  }
  if (segments.length > 1 && segments[0] === agent) rest = segments.slice(1)
  const method = LEGACY_OPERATIONS[agent]?.[rest[0]]
  if (method && methods.includes(method)) rest = [method, ...rest.slice(1)]
  const pattern = rest.join(':') || '*'
  const prefix = literalPrefix(pattern)
  if (!methods.some(name => `${name}:`.startsWith(prefix) || prefix.startsWith(`${name}:`))) {
    return {
      ok: false,
      message:
        `"${input}" matches no cached response of agent ${agent}: keys are <method>:<input hash> ` +
        `and the methods are ${methods.join(', ')}; send ${accepted}`
    }
  }
  return pattern === input ? { ok: true, pattern } : { ok: true, pattern, translatedFrom: input }
}

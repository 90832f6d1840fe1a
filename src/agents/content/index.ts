// The content agent (pro model): blog posts, social posts, video scripts, research and calendars.
import { defineAgent, type AgentDefinition } from '../types.js'
import { generateBlogPost } from './blog.js'
import { generateSocialPosts } from './social.js'
import { generateVideoScript } from './video.js'
import { generateContentCalendar, researchTopic } from './research.js'

export function createContentAgent (): AgentDefinition {
  const methods = [generateBlogPost, generateSocialPosts, generateVideoScript, researchTopic, generateContentCalendar]
  return defineAgent({
    name: 'content',
    description:
      'Content creation: blog posts, social media posts, video scripts, topic research and content calendars',
    defaultModel: 'pro',
    rateLimit: 30,
    capabilities: ['blog-posts', 'social-posts', 'video-scripts', 'topic-research', 'content-calendars'],
    methods
  })
}

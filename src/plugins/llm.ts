// The LLM layer as a plugin: picks the provider (gemini, openai-compatible, or offline: chosen explicitly, or
// without a key outside production, since loadConfig refuses that fallback under NODE_ENV=production), maps
// model tiers to models, prices calls, and reports `llm` health from configuration and the recent error rate.
import fp from 'fastify-plugin'
import { offlineBuilder } from '../agents/index.js'
import { createProvider, describeProvider, modelForTier, type ModelTier } from '../llm/index.js'
import { createPricing, type Pricing } from '../llm/pricing.js'
import type { LlmProvider, Usage } from '../llm/types.js'

/** Outcomes of the last calls (5 minutes, at most 200) for the health check. */
const WINDOW_MS = 5 * 60_000
const WINDOW_MAX = 200

declare module 'fastify' {
  interface FastifyInstance {
    llm: {
      provider: LlmProvider
      modelFor(tier: ModelTier): string
      /** Cost in USD of a call with this usage. */
      price(model: string, usage: Pick<Usage, 'inputTokens' | 'outputTokens'>): number
      pricing: Pricing
      /** Fed by the agent service after every provider call. */
      recordOutcome(ok: boolean): void
      recentErrorRate(): { calls: number, errors: number, rate: number }
    }
  }
}

export default fp(async function llm (app, opts: { provider?: LlmProvider }) {
  const { config } = app
  const pricing = createPricing(config.LLM_PRICING)
  const provider =
    opts.provider ??
    createProvider(config, {
      offlineBuilder: offlineBuilder(),
      onEvent: (event, details) =>
        app.log.warn(
          details,
          event === 'retry' ? 'LLM call retried' : 'LLM pro model unavailable; falling back to flash'
        )
    })
  const outcomes: Array<{ at: number, ok: boolean }> = []

  app.decorate('llm', {
    provider,
    modelFor: (tier: ModelTier) => modelForTier(config, provider.name, tier),
    price: (model: string, usage: Pick<Usage, 'inputTokens' | 'outputTokens'>) => pricing.cost(model, usage),
    pricing,
    recordOutcome (ok: boolean) {
      outcomes.push({ at: Date.now(), ok })
      if (outcomes.length > WINDOW_MAX) outcomes.shift()
    },
    recentErrorRate () {
      const since = Date.now() - WINDOW_MS
      const recent = outcomes.filter(o => o.at >= since)
      const errors = recent.filter(o => !o.ok).length
      return { calls: recent.length, errors, rate: recent.length ? errors / recent.length : 0 }
    }
  })
  app.features.llmProvider = opts.provider ? `${provider.name} (injected)` : describeProvider(config, provider.name)
  if (provider.name === 'offline') {
    app.notices.push(
      `LLM: ${app.features.llmProvider} in use: answers are deterministic local placeholders labelled model "offline".`
    )
  }

  app.health.register('llm', async () => {
    const check = await provider.check()
    const { calls, errors, rate } = app.llm.recentErrorRate()
    const details = {
      provider: provider.name,
      flash: app.llm.modelFor('flash'),
      pro: app.llm.modelFor('pro'),
      recentCalls: calls,
      recentErrors: errors
    }
    if (!check.ok) return { status: 'unhealthy', message: check.message, details }
    if (calls >= 5 && rate >= 0.5) {
      return { status: 'unhealthy', message: `${errors} of the last ${calls} LLM calls failed`, details }
    }
    if (calls >= 5 && rate >= 0.2) {
      return { status: 'degraded', message: `${errors} of the last ${calls} LLM calls failed`, details }
    }
    return { status: 'healthy', message: check.message, details }
  })
}, { name: 'llm', dependencies: ['config', 'health'] })

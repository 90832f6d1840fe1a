// Chooses and builds the LLM provider from the configuration, and maps model tiers to model names.
import type { Config } from '../config.js'
import { createOfflineProvider, OFFLINE_MODEL, type OfflineBuilder } from './offline.js'
import { createOpenAiProvider } from './openai.js'
import type { LlmProvider } from './types.js'

export type ModelTier = 'flash' | 'pro'
export type ProviderEvent = (event: 'retry' | 'fallback', details: Record<string, unknown>) => void

export function providerKind (config: Config): LlmProvider['name'] {
  if (config.LLM_PROVIDER === 'gemini') return 'gemini'
  if (config.LLM_PROVIDER === 'openai') return 'openai'
  if (config.LLM_PROVIDER === 'offline') return 'offline'
  if (config.GEMINI_API_KEY) return 'gemini'
  if (config.OPENAI_BASE_URL) return 'openai'
  return 'offline'
}

export function createProvider (
  config: Config,
  options: { offlineBuilder?: OfflineBuilder; onEvent?: ProviderEvent } = {}
): LlmProvider {
  const retry = {
    maxRetries: config.LLM_MAX_RETRIES,
    baseMs: config.LLM_RETRY_BASE_MS,
    maxDelayMs: config.LLM_RETRY_MAX_DELAY_MS
  }
  switch (providerKind(config)) {
    case 'gemini': {
      const apiKey = config.GEMINI_API_KEY
      if (!apiKey) throw new Error('LLM_PROVIDER=gemini needs GEMINI_API_KEY')
      return deferred('gemini', async () => (await import('./gemini.js')).createGeminiProvider({
        apiKey,
        baseUrl: config.GEMINI_BASE_URL,
        flashModel: config.GEMINI_MODEL,
        proModel: config.GEMINI_PRO_MODEL,
        timeoutMs: config.LLM_TIMEOUT_MS,
        retry,
        onEvent: options.onEvent
      }))
    }
    case 'openai':
      if (!config.OPENAI_BASE_URL) throw new Error('LLM_PROVIDER=openai needs OPENAI_BASE_URL')
      return createOpenAiProvider({
        baseUrl: config.OPENAI_BASE_URL,
        apiKey: config.OPENAI_API_KEY,
        timeoutMs: config.LLM_TIMEOUT_MS,
        retry,
        onEvent: options.onEvent
      })
    default:
      return createOfflineProvider({ build: options.offlineBuilder })
  }
}

/**
 * A provider whose module is loaded by its first use: `@google/genai` (about 12 MB of heap and 110 ms) is
 * imported only by a process whose provider is Gemini, not by every process at start (issue 16).
 */
function deferred (name: LlmProvider['name'], load: () => Promise<LlmProvider>): LlmProvider {
  let loaded: Promise<LlmProvider> | undefined
  const provider = () => (loaded ??= load())
  return {
    name,
    generate: async request => (await provider()).generate(request),
    async * stream (request) { yield * (await provider()).stream(request) },
    check: async () => (await provider()).check()
  }
}

/** The concrete model for a tier under the given provider. */
export function modelForTier (config: Config, provider: LlmProvider['name'], tier: ModelTier): string {
  if (provider === 'offline') return OFFLINE_MODEL
  if (provider === 'openai') return config.OPENAI_MODEL
  return tier === 'pro' ? config.GEMINI_PRO_MODEL : config.GEMINI_MODEL
}

/** One line for the banner and GET /api. */
export function describeProvider (config: Config, provider: LlmProvider['name']): string {
  if (provider === 'gemini') return `gemini (${config.GEMINI_MODEL} / ${config.GEMINI_PRO_MODEL})`
  if (provider === 'openai') {
    return `openai-compatible (${config.OPENAI_MODEL} at ${new URL(config.OPENAI_BASE_URL!).host})`
  }
  return config.LLM_PROVIDER === 'offline' ? 'offline (LLM_PROVIDER=offline)' : 'offline (no GEMINI_API_KEY)'
}

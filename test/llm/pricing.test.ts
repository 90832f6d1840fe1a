// The price table: exact and prefix lookups, cost per call, LLM_PRICING overrides and their validation.
import t from 'tap'
import { createPricing, DEFAULT_PRICES, parsePricingOverride } from '../../src/llm/pricing.js'
import { backoffDelay, parseRetryAfter } from '../../src/llm/retry.js'
import { estimateTokens } from '../../src/llm/tokens.js'

t.test('cost per call from the per-1M table; offline is free', async t => {
  const pricing = createPricing()
  t.equal(
    pricing.cost('gemini-2.5-flash', { inputTokens: 1_000_000, outputTokens: 0 }),
    DEFAULT_PRICES['gemini-2.5-flash'].input
  )
  t.equal(pricing.cost('gemini-2.5-pro', { inputTokens: 1000, outputTokens: 2000 }), (1000 * 1.25 + 2000 * 10) / 1e6)
  t.equal(pricing.cost('offline', { inputTokens: 5000, outputTokens: 5000 }), 0)
})

t.test('versioned model names use the longest known prefix; unknown models cost 0 and are flagged', async t => {
  const pricing = createPricing()
  t.same(pricing.lookup('gemini-2.5-flash-lite-preview-06'), DEFAULT_PRICES['gemini-2.5-flash-lite'])
  t.same(pricing.lookup('gemini-2.5-pro-preview-05-06'), DEFAULT_PRICES['gemini-2.5-pro'])
  t.notOk(pricing.isKnown('mystery-model'))
  t.equal(pricing.cost('mystery-model', { inputTokens: 10, outputTokens: 10 }), 0)
})

t.test('LLM_PRICING overrides and adds models', async t => {
  const pricing = createPricing('{"gemini-2.5-flash":{"input":1,"output":2},"my-llama":{"input":0.5,"output":0.5}}')
  t.equal(pricing.cost('gemini-2.5-flash', { inputTokens: 500_000, outputTokens: 250_000 }), 1)
  t.equal(pricing.cost('my-llama', { inputTokens: 2_000_000, outputTokens: 0 }), 1)
  t.same(pricing.lookup('gemini-2.5-pro'), DEFAULT_PRICES['gemini-2.5-pro'], 'others keep their price')
})

t.test('a malformed LLM_PRICING is rejected with a clear message', async t => {
  t.throws(() => parsePricingOverride('{"m":{"input":-1,"output":1}}'), /LLM_PRICING must be/)
  t.throws(() => parsePricingOverride('{"m":{"input":1}}'), /LLM_PRICING must be/)
  t.throws(() => parsePricingOverride('[1,2]'), /LLM_PRICING must be/)
  t.same(parsePricingOverride(undefined), {})
})

t.test('costs are rounded to the ledger precision (1e-8 USD)', async t => {
  const pricing = createPricing('{"tiny":{"input":0.000001,"output":0}}')
  t.equal(pricing.cost('tiny', { inputTokens: 3, outputTokens: 0 }), 0)
  t.equal(createPricing().cost('gemini-2.5-flash', { inputTokens: 1, outputTokens: 1 }), 0.0000028)
})

t.test('Retry-After: seconds or an HTTP date; backoff: full jitter under an exponential ceiling', async t => {
  t.equal(parseRetryAfter('2'), 2000)
  t.equal(parseRetryAfter('0.5'), 500)
  t.ok(parseRetryAfter(new Date(Date.now() + 3000).toUTCString())! > 1000, 'an HTTP date in the future')
  t.equal(parseRetryAfter('soon'), undefined)
  t.equal(parseRetryAfter(null), undefined)
  const policy = { maxRetries: 5, baseMs: 100, maxDelayMs: 1000 }
  t.equal(backoffDelay(0, policy, undefined, () => 0.999), 100)
  t.equal(backoffDelay(3, policy, undefined, () => 0.5), 400)
  t.equal(backoffDelay(10, policy, undefined, () => 1), 1000, 'capped')
  t.equal(backoffDelay(0, policy, undefined, () => 0), 0, 'full jitter reaches zero')
  t.equal(backoffDelay(0, policy, 5000), 1000, 'Retry-After capped')
  t.equal(backoffDelay(0, policy, 250), 250, 'Retry-After honoured')
})

t.test('token estimate ≈ characters / 4', async t => {
  t.equal(estimateTokens(''), 0)
  t.equal(estimateTokens('abcd'), 1)
  t.equal(estimateTokens('abcde'), 2)
})

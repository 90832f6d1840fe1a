// Token estimates (≈ 4 characters per token) for when a provider reports no usage, and for budgets.
export function estimateTokens (text: string): number {
  return tokensForChars(text.length)
}

/**
 * The estimate for a text of `chars` characters. A stream counts its deltas' characters instead of keeping
 * their text for the estimate: each `text += delta` holds one more string node (32 bytes) for the stream's life.
 */
export function tokensForChars (chars: number): number {
  return chars === 0 ? 0 : Math.ceil(chars / 4)
}

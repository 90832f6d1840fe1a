// Token estimates (≈ 4 characters per token) for when a provider reports no usage, and for budgets.
export function estimateTokens (text: string): number {
  return text.length === 0 ? 0 : Math.ceil(text.length / 4)
}

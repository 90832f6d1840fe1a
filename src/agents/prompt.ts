// Prompt assembly shared by every method: the task, the request as JSON (so the model sees every
// field verbatim), optional context from earlier steps, the method's requirements, and the JSON rule.
export const SYSTEM = {
  travel:
    'You are an experienced travel consultant. You give concrete, practical, up-to-date-sounding advice, ' +
    'you never claim to have live booking data, and you label every price and rule as an estimate.',
  content:
    'You are a senior content strategist and writer. You write original, specific, well-structured content ' +
    'for the requested audience, platform and tone, without filler.',
  innovation:
    'You are a pragmatic startup advisor and innovation analyst. You are specific, evidence-minded and honest ' +
    'about risks and uncertainty; numbers you give are estimates.'
} as const

const CONTEXT_LIMIT = 8000

export function buildPrompt (task: string, input: Record<string, unknown>, requirements: string[] = []): string {
  const { context, ...fields } = input
  const lines = [task, '', 'Request (JSON):', JSON.stringify(fields, null, 2)]
  if (context !== undefined) {
    const text = JSON.stringify(context)
    lines.push(
      '',
      'Context from earlier steps (JSON; use it where relevant):',
      text.length > CONTEXT_LIMIT ? `${text.slice(0, CONTEXT_LIMIT)}…` : text
    )
  }
  if (requirements.length > 0) lines.push('', 'Requirements:', ...requirements.map(r => `- ${r}`))
  lines.push(
    '',
    'Answer with a single JSON object that matches the response schema exactly. No prose outside the JSON.'
  )
  return lines.join('\n')
}

// Glob matching for cache-clear patterns, without backtracking. A pattern (`*` any run, `?` one
// character, `[abc]` `[a-z]` `[^…]` one character of a class, `\x` a literal x) is compiled once into
// the runs of single-character tokens between its stars. A text matches when the first run matches its
// start, the last run its end, and each run in between is found, leftmost, after the previous one
// (leftmost placement is always right: it leaves the most room for the rest). The work is at most
// O(text × pattern), with no RegExp — which backtracked exponentially on patterns such as
// `*?*?*?*?*?*?Z`. Both cache stores (memory and Redis) match with this, so a pattern means the same
// whichever is in use.

/** One character position: any character, or those in `ranges` (flat low/high code pairs), or not in them. */
interface CharToken { any: boolean, negated: boolean, ranges: number[] }
type Run = CharToken[]

const literal = (code: number): CharToken => ({ any: false, negated: false, ranges: [code, code] })

/** The class starting at `glob[start] === '['` and the index of its `]`, or null when it is never closed. */
function parseClass (glob: string, start: number): { token: CharToken, end: number } | null {
  let i = start + 1
  const negated = glob[i] === '^'
  if (negated) i++
  const ranges: number[] = []
  while (i < glob.length && glob[i] !== ']') {
    if (glob[i] === '\\' && i + 1 < glob.length) i++
    const low = glob.charCodeAt(i)
    if (glob[i + 1] === '-' && i + 2 < glob.length && glob[i + 2] !== ']') {
      let last = i + 2
      if (glob[last] === '\\' && last + 1 < glob.length) last++
      const high = glob.charCodeAt(last)
      ranges.push(Math.min(low, high), Math.max(low, high)) // a reversed range counts, as in Redis
      i = last + 1
    } else {
      ranges.push(low, low)
      i++
    }
  }
  return i < glob.length ? { token: { any: false, negated, ranges }, end: i } : null
}

/** The runs between stars: runs.length - 1 stars separate them (first and last may be empty). */
function compile (glob: string): Run[] {
  const runs: Run[] = [[]]
  for (let i = 0; i < glob.length; i++) {
    const char = glob[i]
    const run = runs[runs.length - 1]
    if (char === '*') {
      if (run.length > 0 || runs.length === 1) runs.push([]) // `**` is one star
    } else if (char === '?') {
      run.push({ any: true, negated: false, ranges: [] })
    } else if (char === '\\' && i + 1 < glob.length) {
      run.push(literal(glob.charCodeAt(++i)))
    } else if (char === '[') {
      const parsed = parseClass(glob, i)
      run.push(parsed ? parsed.token : literal(91))
      if (parsed) i = parsed.end
    } else run.push(literal(glob.charCodeAt(i)))
  }
  return runs
}

function accepts (token: CharToken, code: number): boolean {
  if (token.any) return true
  let inside = false
  for (let r = 0; r < token.ranges.length && !inside; r += 2) {
    inside = code >= token.ranges[r] && code <= token.ranges[r + 1]
  }
  return inside !== token.negated
}

/** Whether `run` matches `text` at `at` (the caller checked that it fits). */
function runAt (run: Run, text: string, at: number): boolean {
  for (let k = 0; k < run.length; k++) if (!accepts(run[k], text.charCodeAt(at + k))) return false
  return true
}

/** A predicate telling whether a whole string matches the glob (anchored at both ends). */
export function globMatcher (glob: string): (text: string) => boolean {
  const runs = compile(glob)
  const first = runs[0]
  const last = runs[runs.length - 1]
  const middle = runs.slice(1, -1)
  const fixed = runs.reduce((n, run) => n + run.length, 0)
  if (runs.length === 1) return (text) => text.length === fixed && runAt(first, text, 0)
  return (text) => {
    if (text.length < fixed) return false
    const end = text.length - last.length
    if (!runAt(first, text, 0) || !runAt(last, text, end)) return false
    let at = first.length
    for (const run of middle) {
      while (at + run.length <= end && !runAt(run, text, at)) at++
      if (at + run.length > end) return false
      at += run.length
    }
    return true
  }
}

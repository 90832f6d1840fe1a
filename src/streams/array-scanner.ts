// Incremental scan of streamed JSON text: reports each element object of one array (a top-level
// property such as `recommendations` or `posts`, or the top-level array itself) as soon as its closing
// brace arrives, so `partial` and `post` events go out while the model is still writing. It keeps only the
// text it may still need (the element or top-level string being read), not the whole answer: reading a
// character of a concatenated string copies it flat, so a whole answer kept here was copied once per delta.

export class ArrayItemScanner {
  private text = ''
  private position = 0
  private readonly stack: string[] = []
  private inString = false
  private escaped = false
  private stringStart = -1
  private lastKeyCandidate = ''
  private currentKey = ''
  private targetDepth = -1
  private itemStart = -1
  private finished = false

  /** @param property top-level property holding the array; undefined = the first top-level array. */
  constructor (private readonly property?: string) {}

  /** Feeds a delta; returns the element objects completed by it, in order. */
  push (delta: string): unknown[] {
    if (this.finished) return []
    const text = this.text + delta
    const items: unknown[] = []
    for (; this.position < text.length && !this.finished; this.position++) {
      const ch = text[this.position]
      if (this.inString) {
        if (this.escaped) this.escaped = false
        else if (ch === '\\') this.escaped = true
        else if (ch === '"') {
          this.inString = false
          if (this.atTopObject()) this.lastKeyCandidate = text.slice(this.stringStart + 1, this.position)
        }
        continue
      }
      if (ch === '"') {
        this.inString = true
        this.stringStart = this.position
      } else if (ch === ':' && this.atTopObject()) {
        this.currentKey = this.lastKeyCandidate
      } else if (ch === '{' || ch === '[') {
        this.stack.push(ch)
        if (ch === '[' && this.targetDepth < 0 && this.isTargetArray()) this.targetDepth = this.stack.length
        else if (ch === '{' && this.targetDepth > 0 && this.stack.length === this.targetDepth + 1) {
          this.itemStart = this.position
        }
      } else if (ch === '}' || ch === ']') {
        this.stack.pop()
        if (ch === '}' && this.itemStart >= 0 && this.stack.length === this.targetDepth) {
          try {
            items.push(JSON.parse(text.slice(this.itemStart, this.position + 1)))
          } catch {
            /* not an object after all */
          }
          this.itemStart = -1
        } else if (ch === ']' && this.stack.length === this.targetDepth - 1) {
          this.finished = true
        }
      }
    }
    this.keepFrom(text)
    return items
  }

  /** Drops the text before the first position still needed: the open element's start or open string's. */
  private keepFrom (text: string): void {
    let keep = this.finished ? text.length : this.position
    if (this.itemStart >= 0) keep = Math.min(keep, this.itemStart)
    if (this.inString) keep = Math.min(keep, this.stringStart)
    this.text = text.slice(keep)
    this.position -= keep
    this.itemStart = this.itemStart >= 0 ? this.itemStart - keep : -1
    this.stringStart -= keep
  }

  private atTopObject (): boolean {
    return this.stack.length === 1 && this.stack[0] === '{'
  }

  private isTargetArray (): boolean {
    if (this.stack.length === 1) return this.property === undefined
    return (
      this.stack.length === 2 &&
      this.stack[0] === '{' &&
      (this.property === undefined || this.currentKey === this.property)
    )
  }
}

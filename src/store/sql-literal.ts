// Values written into a statement's text instead of bound, for PGlite: a statement without parameters runs by
// the simple query protocol (exec), one exchange through its WASM instead of six protocol messages, and a large
// value (a run's steps, often tens of KB) costs about a third as much in the text as bound. PostgreSQL keeps
// bound parameters. What is written here may come from a client, Redis or a file: nothing is trusted.

/** A text as a dollar-quoted SQL literal: nothing inside is interpreted, whatever the text holds. */
export function dollarQuoted (text: string): string {
  let tag = 'amk'
  // The literal ends at the first `$tag$`: the text must not hold `$tag` (nor end with it).
  while (text.includes(`$${tag}`)) tag += 'x'
  return `$${tag}$${text}$${tag}$`
}

/**
 * A value as an untyped SQL literal: NULL, or its text dollar-quoted. Untyped, it takes its column's (or cast's)
 * type exactly as a text-format parameter does, so a bad value is the same data error, and rows of one multi-row
 * VALUES list never disagree on a column's type. PostgreSQL text cannot hold a NUL (it would also end the
 * statement): refused with the error PostgreSQL gives a bound one.
 */
export function sqlLiteral (value: unknown): string {
  if (value === null || value === undefined) return 'NULL'
  const text = String(value)
  if (text.includes('\0')) {
    throw Object.assign(new TypeError('a value to write into a statement contains NUL'), { code: '22021' })
  }
  return dollarQuoted(text)
}

/** The statement with every `$n` parameter written into its text as a literal. */
export function inlined (sql: string, params: readonly unknown[]): string {
  return sql.replace(/\$(\d+)/g, (match, n: string) => Number(n) <= params.length ? sqlLiteral(params[Number(n) - 1]) : match)
}

// Figures a reviewer reads off the source: `as` casts (type assertions other than `as const`) and non-null
// assertions, counted on the TypeScript syntax tree, per file and per 1,000 lines. test/codebase.test.ts holds
// src/ to its limits; `npm run code-figures [paths…]` prints the table (default: src).
import ts from 'typescript'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'

export interface FileFigures { file: string, lines: number, casts: number, nonNull: number }

export function sourceFiles (path: string): string[] {
  if (!statSync(path).isDirectory()) return path.endsWith('.ts') ? [path] : []
  return readdirSync(path).sort().flatMap(name => sourceFiles(join(path, name)))
}

export function figuresOf (file: string): FileFigures {
  const text = readFileSync(file, 'utf8')
  const figures = { file, lines: text.split('\n').length, casts: 0, nonNull: 0 }
  const visit = (node: ts.Node): void => {
    const assertion = ts.isAsExpression(node) || ts.isTypeAssertionExpression(node)
    if (assertion && !(ts.isTypeReferenceNode(node.type) && node.type.typeName.getText() === 'const')) figures.casts++
    if (ts.isNonNullExpression(node)) figures.nonNull++
    ts.forEachChild(node, visit)
  }
  visit(ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true))
  return figures
}

export function totals (files: FileFigures[]): { lines: number, casts: number, nonNull: number, castsPer1000: number } {
  const sum = (key: 'lines' | 'casts' | 'nonNull') => files.reduce((total, f) => total + f[key], 0)
  const lines = sum('lines')
  return { lines, casts: sum('casts'), nonNull: sum('nonNull'), castsPer1000: 1000 * sum('casts') / lines }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const files = (process.argv.length > 2 ? process.argv.slice(2) : ['src']).flatMap(sourceFiles).map(figuresOf)
  for (const f of files.filter(f => f.casts + f.nonNull > 0).sort((a, b) => b.casts - a.casts)) {
    console.log(`${String(f.casts).padStart(4)} casts ${String(f.nonNull).padStart(3)} non-null  ${f.file}`)
  }
  const all = totals(files)
  console.log(
    `${files.length} files, ${all.lines} lines: ` +
      `${all.casts} casts (${all.castsPer1000.toFixed(1)} per 1,000 lines), ${all.nonNull} non-null assertions`
  )
}

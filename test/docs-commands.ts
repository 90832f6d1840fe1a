// The command blocks of README.md and docs/*.md, for the tests that run them. A test that runs a section's
// commands gets them with `commandsOf(file, heading)` (literal arguments): test/docs.test.ts finds those calls
// in test/ and fails when a block is run by no test.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

export const ROOT = new URL('..', import.meta.url).pathname

/** Fence languages whose blocks hold commands; test/docs.test.ts refuses the others' aliases. */
export const COMMAND_LANGUAGES = new Set(['sh', 'console'])

export interface CodeBlock {
  file: string
  /** The nearest heading above the block, as written (`### Helm`). */
  heading: string
  /** 1-based line of the opening fence. */
  line: number
  language: string
  text: string
}

/** README.md, then every page of docs/, as paths relative to the repository root. */
export function docFiles (): string[] {
  const pages = readdirSync(join(ROOT, 'docs')).filter(name => name.endsWith('.md')).sort()
  return ['README.md', ...pages.map(name => `docs/${name}`)]
}

export function readDoc (file: string): string {
  return readFileSync(join(ROOT, file), 'utf8')
}

/** Every fenced code block of a file, with the heading it sits under. */
export function codeBlocks (file: string): CodeBlock[] {
  const blocks: CodeBlock[] = []
  let heading = ''
  let open: CodeBlock | undefined
  readDoc(file).split('\n').forEach((line, index) => {
    if (open) {
      if (line.startsWith('```')) { blocks.push(open); open = undefined } else open.text += `${line}\n`
    } else if (line.startsWith('```')) {
      open = { file, heading, line: index + 1, language: line.slice(3).trim(), text: '' }
    } else if (/^#{1,6} /.test(line)) {
      heading = line.trim()
    }
  })
  return blocks
}

/** The lines of a sh block as commands: continuations joined, trailing `# comments` and blank lines dropped. */
export function commandLines (text: string): string[] {
  return text.replace(/\\\n\s*/g, '').split('\n').map(line => line.replace(/\s+#\s.*$/, '').trim()).filter(Boolean)
}

/** The commands of the sh blocks directly under `heading` (e.g. '### Helm') in `file`. */
export function commandsOf (file: string, heading: string): string[] {
  const blocks = codeBlocks(file).filter(block => block.heading === heading && block.language === 'sh')
  if (blocks.length === 0) throw new Error(`${file} has no sh block under "${heading}"`)
  return blocks.flatMap(block => commandLines(block.text))
}

/** The text of a section: from its heading to the next heading of the same or a higher level. */
export function sectionOf (file: string, heading: string): string {
  const text = readDoc(file)
  const start = text.split('\n').findIndex(line => line.trim() === heading)
  if (start < 0) throw new Error(`${file} has no heading "${heading}"`)
  const level = heading.indexOf(' ')
  const lines = text.split('\n').slice(start)
  let fenced = false
  const end = lines.findIndex((line, i) => {
    if (line.startsWith('```')) fenced = !fenced
    return i > 0 && !fenced && /^#{1,6} /.test(line) && line.indexOf(' ') <= level
  })
  return (end < 0 ? lines : lines.slice(0, end)).join('\n')
}

export interface Transcript { command: string, output: string[] }

/** The `$ command` lines of the console blocks under `heading`, each with the output lines that follow it. */
export function transcriptsOf (file: string, heading: string): Transcript[] {
  const blocks = codeBlocks(file).filter(block => block.heading === heading && block.language === 'console')
  if (blocks.length === 0) throw new Error(`${file} has no console block under "${heading}"`)
  const transcripts: Transcript[] = []
  for (const line of blocks.flatMap(block => block.text.split('\n'))) {
    if (line.startsWith('$ ')) transcripts.push({ command: line.slice(2).trim(), output: [] })
    else if (line.trim() !== '') transcripts.at(-1)?.output.push(line)
  }
  return transcripts
}

// `npm start`: runs the server as plain JavaScript, without a TypeScript loader in the process. src/ is
// transpiled once by esbuild (the transpiler tsx uses; see transpile) into
// node_modules/.cache/amrikyy-agent-api/start-<hash>/, keyed by a hash of the sources, so an edit makes a new
// build on the next start and an unchanged tree starts straight from the cache. A loader in the process (tsx)
// costs about a second of start and 70–180 MB of RSS: its hooks run on a thread of their own with its own heap.
// Without esbuild (a production install) it runs dist/ when a build exists; when the cache cannot be written
// it falls back to tsx. `npm run dev` keeps tsx (watch mode).
import { createHash } from 'node:crypto'
import {
  cpSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, statSync, writeFileSync
} from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

export const ROOT = fileURLToPath(new URL('../', import.meta.url))
export const SRC = join(ROOT, 'src')
const CACHE = join(ROOT, 'node_modules', '.cache', 'amrikyy-agent-api')
const KEEP = 3

export function sourceFiles (dir) {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter(entry => entry.isFile())
    .map(entry => join(entry.parentPath ?? entry.path, entry.name))
    .sort()
}

/** A build directory named after everything that shapes its output. */
function buildKey (files, esbuildVersion) {
  const hash = createHash('sha256')
  hash.update(`${process.version}\0${esbuildVersion}\0`)
  const inputs = [join(ROOT, 'package.json'), join(ROOT, 'tsconfig.json'), fileURLToPath(import.meta.url), ...files]
  for (const path of inputs) {
    hash.update(`${relative(ROOT, path)}\0`).update(readFileSync(path)).update('\0')
  }
  return `start-${hash.digest('hex').slice(0, 16)}`
}

/** Keeps the newest few builds: an older one may still serve a running process's lazy imports. */
function prune (current) {
  const builds = readdirSync(CACHE)
    .filter(name => name.startsWith('start-') && name !== current)
    .map(name => ({ name, at: statSync(join(CACHE, name)).mtimeMs }))
    .sort((a, b) => b.at - a.at)
  for (const { name } of builds.slice(KEEP - 1)) rmSync(join(CACHE, name), { recursive: true, force: true })
}

/**
 * Transpiles the TypeScript among `files` (paths under the project root) into `outDir`, in the same layout,
 * copies the others, and adds package.json (src/app.ts reads ../package.json; it also makes the .js files ES
 * modules). No keepNames: without bundling or minifying every function keeps its name anyway, and keepNames
 * would add a `name` store to every closure made (about 3 KB per open stream, issue 16).
 */
export async function transpile (esbuild, files, outDir) {
  await esbuild.build({
    entryPoints: files.filter(path => path.endsWith('.ts') && !path.endsWith('.d.ts')),
    outdir: outDir,
    outbase: ROOT,
    bundle: false,
    format: 'esm',
    platform: 'node',
    target: `node${process.versions.node}`,
    sourcemap: 'linked',
    tsconfig: join(ROOT, 'tsconfig.json'),
    logLevel: 'error'
  })
  // The esbuild service process is not needed any more.
  await esbuild.stop?.()
  for (const path of files.filter(path => !path.endsWith('.ts'))) {
    cpSync(path, join(outDir, relative(ROOT, path)))
  }
  writeFileSync(join(outDir, 'package.json'), readFileSync(join(ROOT, 'package.json')))
}

async function compiled () {
  const esbuild = await import('esbuild').catch(() => null)
  if (!esbuild) return null
  const files = sourceFiles(SRC)
  const key = buildKey(files, esbuild.version)
  const out = join(CACHE, key)
  if (existsSync(join(out, 'src', 'server.js'))) return join(out, 'src', 'server.js')
  // Built aside and renamed into place, so starts racing on a fresh tree never see half a build.
  const staging = join(CACHE, `tmp-${key}-${process.pid}`)
  rmSync(staging, { recursive: true, force: true })
  await transpile(esbuild, files, staging)
  try {
    renameSync(staging, out)
  } catch (error) {
    rmSync(staging, { recursive: true, force: true })
    if (!existsSync(join(out, 'src', 'server.js'))) throw error
  }
  try {
    prune(key)
  } catch {}
  return join(out, 'src', 'server.js')
}

async function main () {
  let entry = null
  try {
    mkdirSync(CACHE, { recursive: true })
    entry = await compiled()
  } catch (error) {
    process.stderr.write(`npm start: could not prepare the compiled sources (${error.message}); running with tsx\n`)
  }
  if (!entry && existsSync(join(ROOT, 'dist', 'server.js')) && !existsSync(join(ROOT, 'node_modules', 'tsx'))) {
    entry = join(ROOT, 'dist', 'server.js')
  }
  if (!entry) {
    const { register } = await import('tsx/esm/api')
    register()
    entry = join(SRC, 'server.ts')
  }
  await import(pathToFileURL(entry).href)
}

// Imported (bench/streams.ts reuses transpile), it only exports.
if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) await main()

// The SDK as a package: the README's "SDK" commands (npm pack ./client, npm install of the tarball) run
// in a scratch project, the README's TypeScript example compiles in strict mode against the installed
// package's own types, and the compiled example runs against a listening server.
import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { codeBlocks, commandsOf } from '../docs-commands.js'
import { buildStreams, listen, PREMIUM_KEY } from '../streams/support.js'

const run = promisify(execFile)
const ROOT = new URL('../..', import.meta.url).pathname
const commands = commandsOf('README.md', '## SDK')
const example = codeBlocks('README.md').find(block => block.heading === '## SDK' && block.language === 'ts')?.text ?? ''

/** Runs one README command line (no shell) in `cwd`. */
const sh = (line: string, cwd: string) => {
  const [command, ...args] = line.split(' ')
  // CI runs npm test with --ignore-scripts, which npm passes on to child npm processes: pack needs its prepack build.
  return run(command, args, {
    cwd,
    env: {
      ...process.env,
      npm_config_ignore_scripts: 'false',
      npm_config_update_notifier: 'false',
      npm_config_fund: 'false',
      npm_config_audit: 'false'
    }
  })
}

t.test('README SDK: pack, install, compile the example strictly, run it against the server', async t => {
  t.same(commands, ['npm pack ./client', 'npm install ./amrikyy-agent-client-1.0.0.tgz'], 'the documented commands')
  const consumer = await mkdtemp(join(tmpdir(), 'amk-sdk-'))
  t.teardown(() => rm(consumer, { recursive: true, force: true }))
  t.teardown(() => rm(join(ROOT, 'client/dist'), { recursive: true, force: true }))

  const packed = await sh(`${commands[0]} --pack-destination ${consumer}`, ROOT)
  t.match(packed.stdout, /amrikyy-agent-client-1\.0\.0\.tgz/, 'npm pack built and packed the SDK')
  await writeFile(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }))
  await sh(`${commands[1]} --prefer-offline --no-package-lock`, consumer)
  const manifest = JSON.parse(await readFile(join(consumer, 'node_modules/@amrikyy/agent-client/package.json'), 'utf8'))
  t.equal(manifest.name, '@amrikyy/agent-client', 'installed')

  const app = await buildStreams(t)
  const url = await listen(app)
  t.ok(
    example.includes("baseUrl: 'http://localhost:3001', apiKey: 'amk_your_premium_key'"),
    'the example names a base URL and key'
  )
  await writeFile(
    join(consumer, 'example.ts'),
    example.replace('http://localhost:3001', url).replace('amk_your_premium_key', PREMIUM_KEY)
  )
  await writeFile(
    join(consumer, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        lib: ['ES2023', 'DOM'],
        types: [],
        strict: true,
        noEmit: false,
        outDir: 'out'
      },
      files: ['example.ts']
    })
  )
  await symlink(join(ROOT, 'node_modules/typescript'), join(consumer, 'node_modules/typescript'))
  const compiled = await sh('node node_modules/typescript/bin/tsc -p tsconfig.json', consumer).then(
    () => '',
    (error: { stdout: string }) => error.stdout
  )
  t.equal(compiled, '', 'the example compiles in strict mode against the package\'s types')
  const { stdout } = await sh('node out/example.js', consumer)
  t.match(stdout, /^\d+ flights\n\d+ characters, \$[\d.]+\n$/, 'the example ran: a typed JSON call and a whole stream')
})

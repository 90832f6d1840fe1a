// Types of what scripts/start.mjs exports (bench/streams.ts compiles its server children with it).
export declare const ROOT: string
export declare const SRC: string
export declare function sourceFiles (dir: string): string[]
export declare function transpile (esbuild: typeof import('esbuild'), files: string[], outDir: string): Promise<void>

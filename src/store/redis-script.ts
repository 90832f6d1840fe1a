// Lua scripts on Redis with typed replies. A script is defined once with its key count, its source and a
// parser that checks the reply's shape; running it sends EVALSHA and, when the server does not know the
// script yet (NOSCRIPT: a new, restarted or flushed server), EVAL. Call sites get the parsed type and never
// cast a reply. A reply of an unexpected shape throws, like any other failed Redis call.
import { createHash } from 'node:crypto'
import type { ChainableCommander, Redis } from 'ioredis'

export type ScriptArg = string | number

/** `keys` strings for a fixed count (a tuple), any number of them for 'any'. */
export type ScriptKeys<N extends number | 'any'> = N extends number ? Tuple<N> : readonly string[]
type Tuple<N extends number, Acc extends string[] = []> =
  number extends N ? readonly string[] : Acc['length'] extends N ? readonly [...Acc] : Tuple<N, [...Acc, string]>

export interface ScriptDefinition<N extends number | 'any', Result> {
  /** What the script is for, in errors. */
  name: string
  /** How many KEYS it takes ('any': as many as given). */
  keys: N
  lua: string
  /** Turns the raw reply into the result; throws on a reply of another shape. */
  parse(reply: unknown): Result
}

export interface RedisScript<N extends number | 'any', Result> {
  (redis: Redis, keys: ScriptKeys<N>, args?: readonly ScriptArg[]): Promise<Result>
  /**
   * Queues the script on a pipeline or transaction, as EVAL (a NOSCRIPT inside one could not be retried);
   * Redis caches the compiled script, so only the text travels again. Parse its reply with `parse`.
   */
  queue(pipeline: ChainableCommander, keys: ScriptKeys<N>, args?: readonly ScriptArg[]): void
  parse(reply: unknown): Result
}

const isNoScript = (error: unknown) => error instanceof Error && error.message.startsWith('NOSCRIPT')

export function defineScript<const N extends number | 'any', Result> (
  definition: ScriptDefinition<N, Result>
): RedisScript<N, Result> {
  const { lua, parse } = definition
  const sha = createHash('sha1').update(lua).digest('hex')
  const parseReply = (reply: unknown): Result => {
    try {
      return parse(reply)
    } catch (error) {
      throw new Error(
        `unexpected reply from the ${definition.name} script: ${error instanceof Error ? error.message : String(error)}`
      )
    }
  }
  const checkKeys = (keys: readonly string[]) => {
    if (definition.keys !== 'any' && keys.length !== definition.keys) {
      throw new TypeError(`the ${definition.name} script takes ${definition.keys} keys, not ${keys.length}`)
    }
  }
  async function run (redis: Redis, keys: ScriptKeys<N>, args: readonly ScriptArg[] = []): Promise<Result> {
    checkKeys(keys)
    let reply: unknown
    try {
      reply = await redis.evalsha(sha, keys.length, ...keys, ...args)
    } catch (error) {
      if (!isNoScript(error)) throw error
      reply = await redis.eval(lua, keys.length, ...keys, ...args)
    }
    return parseReply(reply)
  }
  return Object.assign(run, {
    queue (pipeline: ChainableCommander, keys: ScriptKeys<N>, args: readonly ScriptArg[] = []) {
      checkKeys(keys)
      pipeline.eval(lua, keys.length, ...keys, ...args)
    },
    parse: parseReply
  })
}

function integers (value: unknown, length: number): number[] {
  if (!Array.isArray(value) || value.length !== length || !value.every(item => typeof item === 'number')) {
    throw new Error(`expected ${length} integers`)
  }
  return value
}

/** Reply parsers for the shapes our scripts return. */
export const reply = {
  integer (value: unknown): number {
    if (typeof value !== 'number') throw new Error(`expected an integer, got ${typeof value}`)
    return value
  },
  /** Two integers. */
  pair (value: unknown): [number, number] {
    const [a, b] = integers(value, 2)
    return [a, b]
  },
  /** Three integers. */
  triple (value: unknown): [number, number, number] {
    const [a, b, c] = integers(value, 3)
    return [a, b, c]
  }
}

// Password hashing with scrypt (node:crypto, libuv thread pool, so the event loop stays free).
// Stored form: `scrypt$<N>$<r>$<p>$<salt b64>$<hash b64>` — the parameters travel with the hash so they can
// be raised later without breaking existing users. Verification is constant-time, and takes one
// current-cost derivation's time whatever the stored hash's cost (and an unknown email the same again), so
// response times tell no account apart from another.
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto'

const KEY_LENGTH = 32
const SALT_BYTES = 16
/** log2(N) by default: N = 2^15, r = 8, p = 1 is 32 MiB and roughly 50–100 ms per hash on a server core. */
const DEFAULT_COST = 15
const BLOCK_SIZE = 8
const PARALLELISM = 1
const MAX_MEM = 128 * 1024 * 1024

export interface ScryptParams { N: number, r: number, p: number }
/** One scrypt derivation; injectable so tests can record the work done. */
export type Derive = (password: string, salt: Buffer, params: ScryptParams) => Promise<Buffer>

export const scryptDerive: Derive = (password, salt, params) => {
  const options: ScryptOptions = { ...params, maxmem: MAX_MEM }
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFKC'), salt, KEY_LENGTH, options, (err, key) => err ? reject(err) : resolve(key))
  })
}

/** scrypt's work is linear in N·r·p (p lanes run one after another here). */
const scryptWork = ({ N, r, p }: ScryptParams): number => N * r * p

function parse (stored: string): { params: ScryptParams, salt: Buffer, expected: Buffer } | null {
  const parts = stored.split('$')
  if (parts.length !== 6 || parts[0] !== 'scrypt') return null
  const [N, r, p] = parts.slice(1, 4).map(Number)
  const positiveIntegers = [N, r, p].every(n => Number.isSafeInteger(n) && n > 0)
  if (!positiveIntegers || N < 2 || (N & (N - 1)) !== 0 || 128 * N * r > MAX_MEM) return null
  const expected = Buffer.from(parts[5], 'base64')
  return expected.length === KEY_LENGTH
    ? { params: { N, r, p }, salt: Buffer.from(parts[4], 'base64'), expected }
    : null
}

export class PasswordHasher {
  private readonly dummySalt = randomBytes(SALT_BYTES)

  /** `cost` is log2(N) of new hashes (PASSWORD_HASH_COST). */
  constructor (
    readonly cost = DEFAULT_COST,
    private readonly derive: Derive = scryptDerive
  ) {}

  private get params (): ScryptParams {
    return { N: 2 ** this.cost, r: BLOCK_SIZE, p: PARALLELISM }
  }

  async hash (password: string): Promise<string> {
    const salt = randomBytes(SALT_BYTES)
    const params = this.params
    const key = await this.derive(password, salt, params)
    return ['scrypt', params.N, params.r, params.p, salt.toString('base64'), key.toString('base64')].join('$')
  }

  /** True when a stored hash was made with other parameters than the current cost (rehash it at login). */
  needsRehash (stored: string): boolean {
    return !stored.startsWith(`scrypt$${2 ** this.cost}$${BLOCK_SIZE}$${PARALLELISM}$`)
  }

  /**
   * True when `password` matches `stored`. A cheaper (older) hash is checked while a current-cost
   * derivation runs beside it on another thread of the pool, so the answer takes as long as for a current
   * hash, right password or wrong (equal work alone is not equal time: scrypt slows as its memory grows).
   * A malformed stored hash never matches, never throws, and costs a current-cost check.
   */
  async verify (password: string, stored: string): Promise<boolean> {
    const parsed = parse(stored)
    if (!parsed) return this.verifyAgainstDummy(password)
    const cheaper = scryptWork(parsed.params) < scryptWork(this.params)
    const [actual] = await Promise.all([
      this.derive(password, parsed.salt, parsed.params),
      cheaper ? this.verifyAgainstDummy(password) : null
    ])
    return timingSafeEqual(actual, parsed.expected)
  }

  /**
   * Burns the work of a current-cost verification (unknown email), so response time does not reveal which
   * accounts exist.
   */
  async verifyAgainstDummy (password: string): Promise<false> {
    await this.derive(password, this.dummySalt, this.params)
    return false
  }
}

const hashers = new Map<number, PasswordHasher>()
const hasherFor = (cost: number): PasswordHasher => {
  let hasher = hashers.get(cost)
  if (!hasher) hashers.set(cost, hasher = new PasswordHasher(cost))
  return hasher
}

/** A new hash at `cost` (log2(N)). */
export const hashPassword = (password: string, cost = DEFAULT_COST): Promise<string> => hasherFor(cost).hash(password)
/** True when a stored hash was made with other parameters than `cost` asks for. */
export const needsRehash = (stored: string, cost = DEFAULT_COST): boolean => hasherFor(cost).needsRehash(stored)
/** True when `password` matches `stored` (with the work equalised to `cost`). */
export const verifyPassword = (password: string, stored: string, cost = DEFAULT_COST): Promise<boolean> =>
  hasherFor(cost).verify(password, stored)

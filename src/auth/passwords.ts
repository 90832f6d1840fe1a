// Password hashing with scrypt (node:crypto, libuv thread pool, so the event loop stays free).
// Stored form: `scrypt$<N>$<r>$<p>$<salt b64>$<hash b64>` — the parameters travel with the hash so they can
// be raised later without breaking existing users. Verification is constant-time.
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto'

const KEY_LENGTH = 32
const SALT_BYTES = 16
/** log2(N) by default: N = 2^15, r = 8, p = 1 is 32 MiB and roughly 50–100 ms per hash on a server core. */
export const DEFAULT_COST = 15
const BLOCK_SIZE = 8
const PARALLELISM = 1
const MAX_MEM = 128 * 1024 * 1024

function derive (password: string, salt: Buffer, params: { N: number, r: number, p: number }): Promise<Buffer> {
  const options: ScryptOptions = { ...params, maxmem: MAX_MEM }
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFKC'), salt, KEY_LENGTH, options, (err, key) => err ? reject(err) : resolve(key))
  })
}

/** A new hash; `cost` is log2(N) (PASSWORD_HASH_COST). */
export async function hashPassword (password: string, cost = DEFAULT_COST): Promise<string> {
  const salt = randomBytes(SALT_BYTES)
  const params = { N: 2 ** cost, r: BLOCK_SIZE, p: PARALLELISM }
  const key = await derive(password, salt, params)
  return ['scrypt', params.N, params.r, params.p, salt.toString('base64'), key.toString('base64')].join('$')
}

/** True when a stored hash was made with other parameters than `cost` asks for (rehash it at login). */
export function needsRehash (stored: string, cost = DEFAULT_COST): boolean {
  return !stored.startsWith(`scrypt$${2 ** cost}$${BLOCK_SIZE}$${PARALLELISM}$`)
}

/** True when `password` matches `stored`. A malformed stored hash never matches (and never throws). */
export async function verifyPassword (password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$')
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false
  const [N, r, p] = parts.slice(1, 4).map(Number)
  if (![N, r, p].every(Number.isSafeInteger) || 128 * N * r > MAX_MEM) return false
  const salt = Buffer.from(parts[4], 'base64')
  const expected = Buffer.from(parts[5], 'base64')
  if (expected.length !== KEY_LENGTH) return false
  const actual = await derive(password, salt, { N, r, p })
  return timingSafeEqual(actual, expected)
}

const dummyHashes = new Map<number, Promise<string>>()

/**
 * Burns the same time as a real verification. Called when the email is unknown, so response time does not
 * reveal which accounts exist.
 */
export async function verifyAgainstDummy (password: string, cost = DEFAULT_COST): Promise<false> {
  let dummy = dummyHashes.get(cost)
  if (!dummy) dummyHashes.set(cost, dummy = hashPassword(randomBytes(16).toString('hex'), cost))
  await verifyPassword(password, await dummy)
  return false
}

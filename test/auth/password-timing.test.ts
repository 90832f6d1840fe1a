// After PASSWORD_HASH_COST is raised, a login for a user whose hash still has the old cost runs a
// current-cost derivation alongside the old one, so it takes as long as for a current hash or an unknown
// email and response times tell no account apart. Asserted on the scrypt derivations made and their
// overlap, not on wall time.
import t from 'tap'
import { pglite } from '../support.js'
import { PasswordHasher, scryptDerive, type Derive, type ScryptParams } from '../../src/auth/passwords.js'
import { UserStore } from '../../src/auth/users.js'

const OLD_COST = 10
const CURRENT_COST = 12

t.test('an old-cost hash is checked beside a current-cost derivation; a login upgrades the hash', async t => {
  const db = await pglite()
  const calls: ScryptParams[] = []
  let inFlight = 0
  let overlap = 0
  const recording: Derive = async (password, salt, params) => {
    calls.push(params)
    overlap = Math.max(overlap, ++inFlight)
    try { return await scryptDerive(password, salt, params) } finally { inFlight-- }
  }
  const before = new UserStore(db, new PasswordHasher(OLD_COST, recording))
  await before.create({ email: 'old@example.com', password: 'old-password-0123', role: 'user' })
  const users = new UserStore(db, new PasswordHasher(CURRENT_COST, recording))
  await users.create({ email: 'new@example.com', password: 'new-password-0123', role: 'user' })

  const workOf = async (email: string, password: string) => {
    calls.length = 0
    overlap = 0
    const user = await users.verifyCredentials(email, password)
    return { user, params: [...calls], overlap }
  }
  const fresh = await workOf('new@example.com', 'wrong-password')
  t.same(fresh.params, [{ N: 4096, r: 8, p: 1 }], 'a current hash: one derivation at the current cost')
  const unknown = await workOf('nobody@example.com', 'wrong-password')
  t.same(unknown.params, [{ N: 4096, r: 8, p: 1 }], 'an unknown email: the same derivation')
  const old = await workOf('old@example.com', 'wrong-password')
  t.equal(old.user, null)
  t.same(
    old.params,
    [
      { N: 1024, r: 8, p: 1 },
      { N: 4096, r: 8, p: 1 }
    ],
    'an old hash: its own check and a current-cost one'
  )
  t.equal(old.overlap, 2, 'run side by side, so the answer takes as long as the current-cost one')

  await db.query("UPDATE users SET password_hash = 'scrypt$garbage' WHERE email = 'new@example.com'")
  t.same(
    (await workOf('new@example.com', 'wrong-password')).params,
    [{ N: 4096, r: 8, p: 1 }],
    'a malformed stored hash costs the same too'
  )

  const ok = await workOf('old@example.com', 'old-password-0123')
  t.equal(ok.user?.email, 'old@example.com', 'the right password still logs in')
  t.same(
    ok.params,
    [
      { N: 1024, r: 8, p: 1 },
      { N: 4096, r: 8, p: 1 },
      { N: 4096, r: 8, p: 1 }
    ],
    'checked at the old cost beside a current-cost one, then rehashed'
  )
  const [row] = await db.query("SELECT password_hash FROM users WHERE email = 'old@example.com'")
  t.match(String(row.password_hash), /^scrypt\$4096\$8\$1\$/, 'the hash was upgraded')
  t.same(
    (await workOf('old@example.com', 'wrong-password')).params,
    [{ N: 4096, r: 8, p: 1 }],
    'and needs no padding any more'
  )
})

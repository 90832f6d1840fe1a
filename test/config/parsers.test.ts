// The config layer's parsers: VALID_API_KEYS (the Express service's role-less format is named as such),
// RATE_LIMIT_OVERRIDES, BUDGETS and the role and address lists. They import nothing above src/config/
// (test/codebase.test.ts checks the imports), and src/auth and src/limits use them from here.
import t from 'tap'
import { parseSeedKeys } from '../../src/config/seed-keys.js'
import { isAddressOrRange, limitConfigProblems, parseBudgets, parseOverrides } from '../../src/config/limits.js'
import { ROLES, isRole } from '../../src/config/roles.js'
import * as authRoles from '../../src/auth/roles.js'
import * as apiKeys from '../../src/auth/api-keys.js'

const KEY = 'api_0123456789abcdef0123456789abcdef'

t.test('VALID_API_KEYS: an entry without a role names the missing :role, whatever the key length', async t => {
  const noRole = 'has no role: write it as <key>:<role> (role is one of user, premium, admin, internal)'
  t.throws(() => parseSeedKeys(`${KEY},key2`), { message: `VALID_API_KEYS: entry 1 ${noRole}; entry 2 ${noRole}` })
  t.throws(() => parseSeedKeys(`${KEY}:user,short:admin,${KEY}:root`), {
    message:
      'VALID_API_KEYS: entry 2: the key must be 20–256 characters; entry 3: role must be one of user, premium, admin, internal'
  })
  t.same(parseSeedKeys(` ${KEY}:admin , x${KEY}:premium`), [
    { key: KEY, role: 'admin' },
    { key: `x${KEY}`, role: 'premium' }
  ])
  t.same(parseSeedKeys(undefined), [])
  const error = t.throws(() => parseSeedKeys(`${KEY}`))
  t.notMatch(String(error), KEY, 'the key is never echoed')
})

t.test('RATE_LIMIT_OVERRIDES and BUDGETS', async t => {
  t.same(parseOverrides('{"travel.searchFlights":5,"global":{"max":200,"timeWindowMs":60000}}'),
    { 'travel.searchFlights': { max: 5 }, global: { max: 200, timeWindowMs: 60000 } })
  t.same(parseOverrides(undefined), {})
  t.throws(() => parseOverrides('[]'), /JSON object/)
  t.throws(() => parseOverrides('{"global":-1}'), /scope "global"/)
  t.throws(() => parseOverrides('{"global":{"timeWindowMs":0}}'), /scope "global"/)
  t.same(parseBudgets('{"user":{"tokens":10},"premium":{"usd":2.5}}'), { user: { tokens: 10 }, premium: { usd: 2.5 } })
  t.throws(() => parseBudgets('{"root":{}}'), /unknown role "root"/)
  t.throws(() => parseBudgets('{"user":{"usd":-1}}'), /role "user"/)
})

t.test('role and address lists', async t => {
  t.ok(isAddressOrRange('127.0.0.1'))
  t.ok(isAddressOrRange('::1'))
  t.ok(isAddressOrRange('10.0.0.0/8'))
  t.notOk(isAddressOrRange('10.0.0.0/33'))
  t.notOk(isAddressOrRange('localhost'))
  t.same(
    limitConfigProblems({
      RATE_LIMIT_EXEMPT_ROLES: 'admin,root',
      RATE_LIMIT_WHITELIST: '127.0.0.1,nope',
      BUDGETS: '{'
    }).map(([name]) => name),
    ['BUDGETS', 'RATE_LIMIT_EXEMPT_ROLES', 'RATE_LIMIT_WHITELIST']
  )
  t.same(limitConfigProblems({ RATE_LIMIT_EXEMPT_ROLES: 'admin,internal', RATE_LIMIT_WHITELIST: '127.0.0.1,::1' }), [])
})

t.test('the domain modules use the config layer\'s definitions, not copies', async t => {
  t.equal(authRoles.ROLES, ROLES)
  t.equal(authRoles.isRole, isRole)
  t.equal(apiKeys.parseSeedKeys, parseSeedKeys)
})

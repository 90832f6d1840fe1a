// Authentication and authorization. Each route declares its policy in route config —
// `{ public: true }` or `{ permission: 'agent:execute' }` — and this plugin applies it in onRoute, so
// route files hold no guard code. A route that declares neither makes boot fail.
// Credentials: x-api-key, then Authorization Bearer (our HS256 JWT, or a Supabase token), then any
// authenticator other plugins added with app.authenticators.add() (the stream-ticket one reads ?ticket=).
import fp from 'fastify-plugin'
import fastifyJwt from '@fastify/jwt'
import { timingSafeEqual } from 'node:crypto'
import type { FastifyRequest, RouteOptions } from 'fastify'
import { ForbiddenError, messageOf, statusCodeOf, UnauthorizedError, withDetails } from '../errors.js'
import { hasPermission, type Caller } from '../auth/roles.js'
import { ApiKeyStore, parseSeedKeys } from '../auth/api-keys.js'
import { createAttemptThrottle } from '../auth/attempt-throttle.js'
import { createCallerCheck, type CallerCheck } from '../auth/caller-check.js'
import {
  createCredentialVerifier,
  extractCredential,
  storeUnavailable,
  throttledError,
  type AuthMethod,
  type AuthResult
} from '../auth/credentials.js'
import { generateDevSecret, parseDuration, type TokenClaims } from '../auth/jwt.js'
import { createLoginThrottle, type LoginThrottle } from '../auth/login-throttle.js'
import { PasswordHasher } from '../auth/passwords.js'
import { createSupabaseVerifier, type SupabaseVerifier } from '../auth/supabase.js'
import { UserStore, type UserRecord } from '../auth/users.js'
import '../route-policy.js'

/** Resolves a caller from something other than the standard headers (e.g. a one-time stream ticket). */
export type RequestAuthenticator = (request: FastifyRequest) => Promise<Caller | null>

export interface AuthService {
  users: UserStore
  apiKeys: ApiKeyStore
  loginThrottle: LoginThrottle
  supabase: SupabaseVerifier | null
  /** Lifetime of issued tokens, in seconds. */
  tokenLifetimeSeconds: number
  issueToken(claims: TokenClaims): string
  /** Checks email and password under the login throttle: the user, or 401 / 429 (503 when the database is down). */
  login(email: string, password: string, ip: string): Promise<UserRecord>
  /** Re-checks the credential behind a stored caller (stream tickets): 401 when revoked, expired or deleted. */
  checkCaller: CallerCheck
  recordAttempt(method: AuthMethod, result: AuthResult): void
}

declare module 'fastify' {
  interface FastifyRequest {
    caller: Caller | null
  }
  interface FastifyInstance {
    /** Resolves the caller from the request's credentials (null when none was sent); throws 401 on a bad one. */
    authenticate(request: FastifyRequest): Promise<Caller | null>
    /** Extra authenticators, tried in order when the request carries no x-api-key / Authorization header. */
    authenticators: { add(authenticator: RequestAuthenticator): void }
    auth: AuthService
  }
}

/** Routes served by Swagger UI (static assets) are public documentation. */
const DOCS_PREFIX = '/docs'
const WWW_AUTHENTICATE = { 'www-authenticate': 'Bearer realm="amrikyy-agent-api"' }

/** A 401 carries the WWW-Authenticate challenge; any other error passes unchanged. */
function challenged (err: unknown): unknown {
  return statusCodeOf(err) === 401 && err instanceof Error ? Object.assign(err, { headers: WWW_AUTHENTICATE }) : err
}

function safeEqual (a: string, b: string): boolean {
  const left = Buffer.from(a)
  const right = Buffer.from(b)
  return left.length === right.length && timingSafeEqual(left, right)
}

export default fp(async function auth (app) {
  const config = app.config
  const metricsToken = config.METRICS_TOKEN
  const development = config.NODE_ENV !== 'production'

  const secret = config.JWT_SECRET ?? generateDevSecret()
  if (!config.JWT_SECRET) {
    app.notices.push(
      '  auth     : JWT_SECRET is not set — ' +
        'tokens are signed with a random per-process secret and die with this process'
    )
  }
  const tokenLifetimeSeconds = parseDuration(config.JWT_EXPIRES_IN)
  await app.register(fastifyJwt, {
    secret,
    sign: { algorithm: 'HS256', iss: config.JWT_ISSUER, aud: config.JWT_AUDIENCE, expiresIn: tokenLifetimeSeconds },
    verify: {
      algorithms: ['HS256'],
      allowedIss: config.JWT_ISSUER,
      allowedAud: config.JWT_AUDIENCE,
      requiredClaims: ['sub', 'iat', 'exp', 'iss', 'aud'],
      // fast-jwt's LRU of verified tokens: an entry is used only between the token's nbf and exp (failures are
      // not remembered), so a cached answer is the one verification would give.
      cache: config.JWT_VERIFY_CACHE_SIZE > 0 ? config.JWT_VERIFY_CACHE_SIZE : false
    }
  })

  const attempts = app.meters.counter('auth_attempts_total', 'Authentication attempts, by method and result', [
    'method',
    'result'
  ])
  for (const method of ['password', 'jwt', 'api_key', 'supabase']) {
    for (const result of ['success', 'failure', 'throttled']) attempts.inc({ method, result }, 0)
  }
  const recordAttempt = (method: AuthMethod, result: AuthResult) => attempts.inc({ method, result })

  const apiKeys = new ApiKeyStore(app.db, {
    cacheTtlMs: config.API_KEY_CACHE_TTL_MS,
    onError: (err) => app.log.warn({ err: err.message }, 'api key last-used update failed')
  })
  const users = new UserStore(app.db, new PasswordHasher(config.PASSWORD_HASH_COST))
  const supabase = config.SUPABASE_URL
    ? createSupabaseVerifier({ url: config.SUPABASE_URL, jwtSecret: config.SUPABASE_JWT_SECRET })
    : null
  const throttleStore = { windowMs: 60_000, redis: () => app.redis, keyPrefix: config.REDIS_KEY_PREFIX }
  const loginThrottle = createLoginThrottle({
    maxPerEmailAndIp: config.LOGIN_RATE_LIMIT,
    maxPerEmail: config.LOGIN_EMAIL_RATE_LIMIT,
    maxPerIp: config.LOGIN_IP_RATE_LIMIT,
    ...throttleStore
  })

  const verifyCredential = createCredentialVerifier({
    verifyJwt: (token) => app.jwt.verify(token),
    apiKeys,
    supabase,
    keyThrottle: createAttemptThrottle({ ...throttleStore, component: 'api key throttle' }),
    maxKeyFailures: config.API_KEY_FAILURE_LIMIT,
    record: recordAttempt
  })
  const callerCheck = createCallerCheck({ apiKeys, users })
  const extra: RequestAuthenticator[] = []

  app.decorateRequest('caller', null)
  app.decorate('authenticators', { add: (authenticator: RequestAuthenticator) => { extra.push(authenticator) } })
  app.decorate('auth', {
    users,
    apiKeys,
    loginThrottle,
    supabase,
    tokenLifetimeSeconds,
    issueToken: (claims: TokenClaims) => app.jwt.sign({ sub: claims.sub, email: claims.email, role: claims.role }),
    async login (email: string, password: string, ip: string) {
      const attempt = await loginThrottle.attempt({ email, ip })
      if (attempt.waitMs > 0) {
        recordAttempt('password', 'throttled')
        throw throttledError('Too many failed logins; try again later', 'login', attempt.waitMs, {
          limit: attempt.limit
        })
      }
      let user: UserRecord | null
      try {
        user = await users.verifyCredentials(email, password)
      } catch (err) {
        await attempt.release() // the database failed, not the client: count nothing against anyone
        app.log.warn({ err: messageOf(err) }, 'login: user store unavailable')
        throw storeUnavailable(err, 'Logins')
      }
      recordAttempt('password', user ? 'success' : 'failure')
      if (!user) throw new UnauthorizedError('Invalid email or password')
      await attempt.release()
      return user
    },
    async checkCaller (caller: Caller, now?: number) {
      await callerCheck(caller, now).catch((err: unknown) => { throw challenged(err) })
    },
    recordAttempt
  })
  app.decorate('authenticate', async (request: FastifyRequest): Promise<Caller | null> => {
    const credential = extractCredential(request.headers, request.query)
    if (
      credential?.type === 'bearer' &&
      metricsToken &&
      request.routeOptions.config.metricsToken &&
      safeEqual(credential.value, metricsToken)
    ) {
      return { id: 'metrics-token', kind: 'metrics-token', role: 'user' }
    }
    if (credential) return verifyCredential(credential, { ip: request.ip })
    for (const authenticator of extra) {
      const caller = await authenticator(request)
      if (caller) return caller
    }
    return null
  })

  app.addHook('onRoute', (route: RouteOptions) => {
    const policy = route.config ?? {}
    if (policy.public || route.url.startsWith(DOCS_PREFIX)) return
    const permission = policy.permission
    if (!permission) {
      throw new Error(`Route ${String(route.method)} ${route.url} declares neither config.permission nor config.public`)
    }
    const guard = async (request: FastifyRequest) => {
      let caller: Caller | null
      try {
        caller = await app.authenticate(request)
      } catch (err) {
        throw challenged(err)
      }
      if (!caller) {
        throw withDetails(
          new UnauthorizedError('Authentication required: send Authorization: Bearer <token> or x-api-key'),
          undefined,
          WWW_AUTHENTICATE
        )
      }
      request.caller = caller
      if (caller.kind === 'metrics-token') return
      if (!hasPermission(caller.role, permission)) {
        throw withDetails(new ForbiddenError(permission), { permission, role: caller.role })
      }
    }
    route.onRequest = [guard, ...([route.onRequest ?? []].flat())]
  })

  // Seed the credentials the environment configures; all idempotent, so replicas may start together.
  if (config.ADMIN_EMAIL && config.ADMIN_PASSWORD) {
    const outcome = await users.ensureAdmin(config.ADMIN_EMAIL, config.ADMIN_PASSWORD)
    if (outcome !== 'unchanged') app.log.info({ outcome }, 'admin user from ADMIN_EMAIL')
  }
  await apiKeys.seed(parseSeedKeys(config.VALID_API_KEYS))
  const nothingConfigured = !config.JWT_SECRET && !config.VALID_API_KEYS && !config.ADMIN_EMAIL && !config.SUPABASE_URL
  if (development && nothingConfigured) {
    const key = await apiKeys.createDevKey()
    app.notices.push(`  dev key  : ${key}  (admin API key for this development run, shown once; send it as x-api-key)`)
  }

  const methods = [
    'JWT (HS256)',
    'API keys',
    ...(supabase ? [`Supabase Auth (${config.SUPABASE_JWT_SECRET ? 'JWKS + HS256 secret' : 'JWKS'})`] : [])
  ]
  app.features.auth = methods.join(', ')
  if (supabase) {
    app.health.register('supabase', async () => {
      try {
        const keys = await supabase.checkJwks()
        return {
          status: keys > 0 || config.SUPABASE_JWT_SECRET ? 'healthy' : 'degraded',
          message: `JWKS has ${keys} key(s)`
        }
      } catch (err) {
        if (config.SUPABASE_JWT_SECRET) {
          return { status: 'degraded', message: `JWKS unavailable (${messageOf(err)}); HS256 tokens still accepted` }
        }
        throw err
      }
    })
  }
  app.addHook('preClose', async () => { await apiKeys.flush() })
}, { name: 'auth', dependencies: ['config', 'store', 'metrics', 'redis', 'health'] })

// Auth routes (DESIGN §4.2, §7): login, refresh, me; users and API keys (admin). Thin: validate, dispatch
// to app.auth; the permission of each route is in its config and enforced by the auth plugin.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import {
  BadRequestError,
  ConflictError,
  ForbiddenError,
  NotFoundError,
  UnauthorizedError,
  withDetails
} from '../errors.js'
import { hasPermission, PERMISSIONS, ROLE_PERMISSIONS, ROLES, type Caller, type Role } from '../auth/roles.js'
import type { ApiKeyRecord } from '../auth/api-keys.js'
import {
  AuthCallerSchema,
  AuthTokenSchema,
  ApiKeySchema,
  CreatedApiKeySchema,
  DailyCostBudgetField,
  DailyTokenBudgetField,
  UserSchema
} from '../schemas/auth.js'
import { ref } from '../schemas/common.js'
import { callerOf, callerSecurity as security } from './toolkit.js'

const Email = Type.String({ format: 'email', maxLength: 254 })

/** A caller may only hand out a role whose permissions it holds itself. */
function assertCanGrant (caller: Caller, role: Role): void {
  const missing = [...ROLE_PERMISSIONS[role]].find(p => !hasPermission(caller.role, p))
  if (missing) {
    throw withDetails(new ForbiddenError(missing), { permission: missing, role: caller.role, requestedRole: role })
  }
}

function keyView (record: ApiKeyRecord, now = Date.now()) {
  const status: 'revoked' | 'expired' | 'active' = record.revokedAt
    ? 'revoked'
    : record.expiresAt && Date.parse(record.expiresAt) <= now
      ? 'expired'
      : 'active'
  return { ...record, status }
}

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const tokenFor = (user: { id: string, email: string, role: Role }) => ({
    token: app.auth.issueToken({ sub: user.id, email: user.email, role: user.role }),
    tokenType: 'Bearer' as const,
    expiresIn: app.auth.tokenLifetimeSeconds,
    user: { id: user.id, email: user.email, role: user.role }
  })

  app.post(
    '/login',
    {
      config: { public: true },
      schema: {
        operationId: 'login',
        tags: ['auth'],
        summary: 'Exchange email and password for a bearer token',
        description:
          'Failed attempts are limited per (email, client IP) (LOGIN_RATE_LIMIT per minute), ' +
          'per email (LOGIN_EMAIL_RATE_LIMIT) and per IP (LOGIN_IP_RATE_LIMIT); then 429 with Retry-After.',
        security: [],
        body: Type.Object(
          { email: Email, password: Type.String({ minLength: 1, maxLength: 1024 }) },
          { additionalProperties: false }
        ),
        response: { 200: ref(AuthTokenSchema) }
      }
    },
    async request => tokenFor(await app.auth.login(request.body.email, request.body.password, request.ip))
  )

  app.post('/refresh', {
    config: { permission: 'agent:read' },
    schema: {
      operationId: 'refreshToken',
      tags: ['auth'],
      summary: 'Trade a valid token from /api/auth/login for a fresh one (role re-read from the database)',
      security: [{ bearerAuth: [] }],
      response: { 200: ref(AuthTokenSchema) }
    }
  }, async (request) => {
    const caller = callerOf(request)
    if (caller.kind !== 'user') throw new BadRequestError('Only tokens issued by POST /api/auth/login can be refreshed')
    const user = await app.auth.users.findById(caller.id.slice('user:'.length))
    if (!user) throw new UnauthorizedError('The account behind this token no longer exists')
    return tokenFor(user)
  })

  app.get(
    '/me',
    {
      config: { permission: 'agent:read' },
      schema: {
        operationId: 'getCurrentCaller',
        tags: ['auth'],
        summary: 'Who the credential belongs to, its role and permissions',
        security,
        response: { 200: ref(AuthCallerSchema) }
      }
    },
    async request => {
      const caller = callerOf(request)
      const permissions = caller.kind === 'metrics-token' ? [] : PERMISSIONS.filter(p => hasPermission(caller.role, p))
      return { ...caller, permissions }
    }
  )

  app.post('/users', {
    config: { permission: 'agent:manage' },
    schema: {
      operationId: 'createUser',
      tags: ['auth'],
      summary: 'Create a user who can log in (admin)',
      security,
      body: Type.Object({
        email: Email,
        password: Type.String({ minLength: 12, maxLength: 1024, description: 'At least 12 characters' }),
        role: Type.Optional(Type.Union(ROLES.map(r => Type.Literal(r)), { default: 'user' }))
      }, { additionalProperties: false }),
      response: { 201: ref(UserSchema) }
    }
  }, async (request, reply) => {
    const role = request.body.role ?? 'user'
    assertCanGrant(callerOf(request), role)
    const user = await app.auth.users.create({ email: request.body.email, password: request.body.password, role })
    if (!user) throw new ConflictError('A user with this email already exists')
    return reply.code(201).send(user)
  })

  app.post(
    '/keys',
    {
      config: { permission: 'agent:manage' },
      schema: {
        operationId: 'createApiKey',
        tags: ['auth'],
        summary: 'Create an API key; the key is in this response only (admin)',
        security,
        body: Type.Object(
          {
            name: Type.String({ minLength: 1, maxLength: 100 }),
            role: Type.Optional(
              Type.Union(
                ROLES.map(r => Type.Literal(r)),
                { default: 'user' }
              )
            ),
            expiresAt: Type.Optional(
              Type.String({ format: 'date-time', description: 'Optional expiry, in the future' })
            ),
            dailyTokenBudget: Type.Optional(
              DailyTokenBudgetField('Daily LLM token budget of this key (overrides the role budget)')
            ),
            dailyCostBudgetUsd: Type.Optional(
              DailyCostBudgetField('Daily LLM cost budget in USD of this key (overrides the role budget)')
            )
          },
          { additionalProperties: false }
        ),
        response: { 201: ref(CreatedApiKeySchema) }
      }
    },
    async (request, reply) => {
      const role = request.body.role ?? 'user'
      const caller = callerOf(request)
      assertCanGrant(caller, role)
      const expiresAt = request.body.expiresAt ? new Date(request.body.expiresAt) : null
      if (expiresAt && expiresAt.getTime() <= Date.now()) throw new BadRequestError('expiresAt must be in the future')
      const { name, dailyTokenBudget, dailyCostBudgetUsd } = request.body
      const { key, record } = await app.auth.apiKeys.create({
        name,
        role,
        expiresAt,
        createdBy: caller.id,
        dailyTokenBudget,
        dailyCostBudgetUsd
      })
      return reply.code(201).send({ ...keyView(record), key })
    }
  )

  app.get('/keys', {
    config: { permission: 'agent:manage' },
    schema: {
      operationId: 'listApiKeys',
      tags: ['auth'],
      summary: 'List API keys, newest first (never the key itself) (admin)',
      security,
      querystring: Type.Object({ limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }) }),
      response: { 200: Type.Object({ keys: Type.Array(ref(ApiKeySchema)) }) }
    }
  }, async (request) => ({ keys: (await app.auth.apiKeys.list(request.query.limit)).map(r => keyView(r)) }))

  app.delete('/keys/:id', {
    config: { permission: 'agent:manage' },
    schema: {
      operationId: 'revokeApiKey',
      tags: ['auth'],
      summary: 'Revoke an API key; takes effect at once on this replica (admin)',
      security,
      params: Type.Object({ id: Type.String({ format: 'uuid' }) }),
      response: { 200: ref(ApiKeySchema) }
    }
  }, async (request) => {
    const record = await app.auth.apiKeys.revoke(request.params.id)
    if (!record) throw new NotFoundError(`API key ${request.params.id} not found`)
    return keyView(record)
  })
}

export default routes

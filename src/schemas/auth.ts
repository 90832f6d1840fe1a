// TypeBox schemas of the auth routes' responses, registered as named OpenAPI components.
import { Type, type Static, type TSchema } from 'typebox'
import { PERMISSIONS, ROLES, type Permission, type Role } from '../auth/roles.js'
import { ref } from './common.js'

const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()])
const DateTime = Type.String({ format: 'date-time' })

// Unions built from the role and permission lists: Type.Unsafe gives them their static types (a union
// of a mapped array is not a tuple, so TypeBox cannot infer it) without changing the JSON schema.
export const RoleSchema = Type.Unsafe<Role>(
  Type.Union(
    ROLES.map(r => Type.Literal(r)),
    { $id: 'Role', description: 'user · premium · admin · internal' }
  )
)
const PermissionSchema = Type.Unsafe<Permission>(Type.Union(PERMISSIONS.map(p => Type.Literal(p))))

export const AuthUserSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  email: Type.String(),
  role: ref(RoleSchema)
}, { $id: 'AuthUser', additionalProperties: false })

export const AuthTokenSchema = Type.Object({
  token: Type.String({ description: 'HS256 JWT; send it as Authorization: Bearer <token>' }),
  tokenType: Type.Literal('Bearer'),
  expiresIn: Type.Integer({ description: 'Seconds until the token expires' }),
  user: ref(AuthUserSchema)
}, { $id: 'AuthToken', additionalProperties: false })

export const AuthCallerSchema = Type.Object(
  {
    id: Type.String({ description: 'Stable caller id: user:<uuid>, key:<uuid>, supabase:<sub> or metrics-token' }),
    kind: Type.Union([
      Type.Literal('user'),
      Type.Literal('api-key'),
      Type.Literal('supabase'),
      Type.Literal('metrics-token')
    ]),
    role: ref(RoleSchema),
    email: Type.Optional(Type.String()),
    keyId: Type.Optional(Type.String()),
    permissions: Type.Array(PermissionSchema)
  },
  { $id: 'AuthCaller', additionalProperties: false }
)

export const UserSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  email: Type.String(),
  role: ref(RoleSchema),
  createdAt: DateTime
}, { $id: 'User', additionalProperties: false })

/**
 * Largest per-key budgets a client may set. Both fit their columns (bigint; numeric(14, 6) holds less
 * than 1e8) and stay exact as JavaScript numbers, so a larger value is a 400 naming the field, never a
 * database error.
 */
export const MAX_DAILY_TOKEN_BUDGET = 1_000_000_000_000
export const MAX_DAILY_COST_BUDGET_USD = 1_000_000

export const DailyTokenBudgetField = (description: string) =>
  Type.Integer({ minimum: 0, maximum: MAX_DAILY_TOKEN_BUDGET, description })
export const DailyCostBudgetField = (description: string) =>
  Type.Number({ minimum: 0, maximum: MAX_DAILY_COST_BUDGET_USD, description })

const apiKeyFields = {
  id: Type.String({ format: 'uuid' }),
  name: Type.String(),
  prefix: Type.String({ description: 'First characters of the key, for recognising it' }),
  role: ref(RoleSchema),
  source: Type.Union([Type.Literal('api'), Type.Literal('env'), Type.Literal('dev')], {
    description: 'api: created here; env: VALID_API_KEYS; dev: generated development key'
  }),
  status: Type.Union([Type.Literal('active'), Type.Literal('revoked'), Type.Literal('expired')]),
  createdBy: Nullable(Type.String()),
  createdAt: DateTime,
  expiresAt: Nullable(DateTime),
  revokedAt: Nullable(DateTime),
  lastUsedAt: Nullable(Type.String({ format: 'date-time', description: 'Updated at most once a minute' })),
  dailyTokenBudget: Nullable(DailyTokenBudgetField('Daily token budget of this key; null = the role budget')),
  dailyCostBudgetUsd: Nullable(DailyCostBudgetField('Daily USD budget of this key; null = the role budget'))
}

export const ApiKeySchema = Type.Object(apiKeyFields, { $id: 'ApiKey', additionalProperties: false })
export type ApiKey = Static<typeof ApiKeySchema>

export const CreatedApiKeySchema = Type.Object({
  ...apiKeyFields,
  key: Type.String({ description: 'The API key. Shown only in this response: store it now' })
}, { $id: 'CreatedApiKey', additionalProperties: false })

/** Components of the auth routes, dependencies first. */
export const authSchemas = [
  RoleSchema,
  AuthUserSchema,
  AuthTokenSchema,
  AuthCallerSchema,
  UserSchema,
  ApiKeySchema,
  CreatedApiKeySchema
]

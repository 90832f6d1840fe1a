// Every environment variable the service reads, as one TypeBox schema. Parsed once at boot;
// a bad environment fails with one message naming every bad variable. Nothing else reads process.env.
// Config is the base layer: it imports no domain module. The schema and loadConfig stay in this file
// (every plugin imports './config.js'); the parsers of values a schema cannot check (VALID_API_KEYS,
// limit JSON, role and address lists) and the Express service's old names are in src/config/, and the
// domain modules import them from there.
import { Type, type Static, type TSchema } from 'typebox'
import { Value } from 'typebox/value'
import { parseSeedKeys } from './config/seed-keys.js'
import { csv, limitConfigProblems } from './config/limits.js'
import { legacyEnvironment } from './config/legacy.js'

export { csv }

const Str = (description: string, extra: object = {}) =>
  Type.Optional(Type.String({ minLength: 1, description, ...extra }))
const Bool = (def: boolean, description: string) => Type.Boolean({ default: def, description })
const Int = (def: number, description: string, min = 0, max = Number.MAX_SAFE_INTEGER) =>
  Type.Integer({ default: def, minimum: min, maximum: max, description })
const Enum = <T extends string>(values: readonly T[], def: T, description: string) =>
  Type.Union(values.map(v => Type.Literal(v)), { default: def, description })

export const ConfigSchema = Type.Object({
  // server
  PORT: Int(3001, 'HTTP port', 1, 65535),
  HOST: Type.String({ default: '0.0.0.0', description: 'Listen address (0.0.0.0 so probes reach it in a pod)' }),
  NODE_ENV: Enum(['development', 'production', 'test'] as const, 'development', 'Runtime environment'),
  LOG_LEVEL: Enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, 'info', 'Pino log level'),
  TRUST_PROXY: Type.String({
    default: 'false',
    description: '`true`, `false`, a hop count, or a comma-separated list of proxy addresses/CIDRs'
  }),
  BODY_LIMIT: Int(1_048_576, 'Largest accepted request body in bytes', 1024),
  SHUTDOWN_GRACE_MS: Int(10_000, 'Time allowed for a graceful shutdown before the process exits', 1000),
  REQUEST_TIMEOUT_MS: Int(
    30_000,
    'Longest time to receive a whole request (headers and body); a slower upload gets 408. ' +
      'Responses (SSE streams) are not limited by it',
    1000
  ),
  HEADERS_TIMEOUT_MS: Int(10_000, "Longest time to receive a request's headers (at most REQUEST_TIMEOUT_MS)", 1000),
  KEEP_ALIVE_TIMEOUT_MS: Int(
    65_000,
    "How long an idle keep-alive connection stays open between requests (longer than a typical load balancer's 60 s)",
    1000
  ),
  MAX_CONNECTIONS: Int(
    15_000,
    'Open connections per process; more are refused at accept (keep below the file-descriptor limit); 0 = unlimited',
    0
  ),
  JSON_MAX_DEPTH: Int(
    32,
    'Deepest nesting of objects and arrays accepted in a request body (deeper gets 400)',
    2,
    1000
  ),
  ALLOWED_ORIGINS: Type.String({
    default: '',
    description: 'Comma-separated CORS origins; empty = no cross-origin access, `*` = any'
  }),

  // persistence
  DATA_DIR: Type.String({
    default: './data',
    description: 'PGlite data directory when DATABASE_URL is unset (`memory://` keeps it in memory)'
  }),
  // A new PGlite database is unpacked from this cache instead of running initdb (seconds, and twice the memory)
  // and the migrations (about 0.4 s).
  PGLITE_SNAPSHOT_DIR: Type.String({
    default: 'node_modules/.cache/amrikyy-agent-api/pglite',
    description: 'PGlite: where pre-initialised data directories (initdb output, and that with the migrations) ' +
      'are cached and reused for every new database; the first start writes them (the Docker image has them); ' +
      'empty = run initdb and the migrations for each new database'
  }),
  // PGlite touches all of shared_buffers at start, so Postgres's default (128MB) costs 128 MB of RSS at rest.
  PGLITE_SHARED_BUFFERS: Type.String({
    default: '16MB',
    pattern: '^[1-9]\\d*(kB|MB|GB)$',
    description: 'PGlite: Postgres shared_buffers (page cache inside the process; resident from the start). ' +
      'Larger helps a database much bigger than it'
  }),
  DATABASE_URL: Str('PostgreSQL connection string (postgres://…); unset = embedded PGlite', {
    pattern: '^postgres(ql)?://.+'
  }),
  DATABASE_CONNECT_TIMEOUT_MS: Int(
    1000,
    'PostgreSQL: longest wait for a new connection; ' +
      'past it (or on a refused one) requests get 503 AMK_DATABASE_UNAVAILABLE',
    50
  ),
  DATABASE_ACQUIRE_TIMEOUT_MS: Int(
    1000,
    'PostgreSQL: longest wait for a pooled connection (including connecting) before a request gets 503',
    50
  ),
  DATABASE_STATEMENT_TIMEOUT_MS: Int(
    10_000,
    'PostgreSQL: statement_timeout of every query (also enforced by the client, for a server that stops answering)',
    100
  ),
  DATABASE_POOL_MAX: Int(10, 'PostgreSQL: most connections this process holds', 1, 1000),
  REDIS_URL: Str('Redis connection string (redis://…); unset = in-memory stores', { pattern: '^rediss?://.+' }),
  REDIS_REQUIRED: Bool(false, 'When true, readiness fails while Redis is unreachable'),
  REDIS_KEY_PREFIX: Type.String({ default: 'amk:', description: 'Prefix of every Redis key this service writes' }),
  REDIS_CONNECT_TIMEOUT_MS: Int(1000, 'Redis connect timeout', 50),
  REDIS_COMMAND_TIMEOUT_MS: Int(500, 'Redis per-command timeout; a slower Redis is treated as down', 20),
  REDIS_RETRY_MS: Type.Optional(
    Type.Integer({
      minimum: 50,
      description:
        'After a Redis timeout or error, every component uses its in-memory fallback this long, ' +
        'then one PING probes Redis (the circuit breaker); unset = RATE_LIMIT_REDIS_RETRY_MS'
    })
  ),

  // health
  HEALTH_CHECK_TIMEOUT_MS: Int(2000, 'Timeout of each component health check', 50),
  HEALTH_CACHE_TTL_MS: Int(30_000, 'How long /api/health reuses its last result (with its status code)', 0),
  EVENT_LOOP_MAX_DELAY_MS: Int(1000, '/api/health/live answers 503 when the event loop stalled longer than this', 10),

  // auth
  JWT_SECRET: Str('HS256 secret for issued tokens, at least 32 characters (required in production)', { minLength: 32 }),
  JWT_EXPIRES_IN: Type.String({
    default: '1h',
    pattern: '^\\d+[smhd]?$',
    description: 'Lifetime of issued tokens (e.g. 15m, 1h, 7d)'
  }),
  JWT_ISSUER: Type.String({ default: 'amrikyy-agent-api', description: 'iss claim set and required on issued tokens' }),
  JWT_AUDIENCE: Type.String({
    default: 'amrikyy-agent-clients',
    description: 'aud claim set and required on issued tokens'
  }),
  // Issue 16: verifying an HS256 token (decode, HMAC, claim checks) was a real share of a cheap request's CPU.
  JWT_VERIFY_CACHE_SIZE: Int(
    1000,
    'Verified tokens remembered per process (by a hash of the token, each only until its exp), so a client ' +
      'reusing its token skips re-verification; 0 verifies every request',
    0
  ),
  ADMIN_EMAIL: Str('Creates (idempotently) the first admin user at start, with ADMIN_PASSWORD', { format: 'email' }),
  ADMIN_PASSWORD: Str('Password of the first admin user (at least 12 characters)', { minLength: 12 }),
  VALID_API_KEYS: Str('Comma-separated `key:role` API keys seeded at start (stored hashed)'),
  SUPABASE_URL: Str('Supabase project URL; enables Supabase Auth access tokens', { pattern: '^https?://.+' }),
  SUPABASE_ANON_KEY: Str('Supabase anon (publishable) key'),
  SUPABASE_JWT_SECRET: Str('Legacy HS256 JWT secret of the Supabase project'),
  LOGIN_RATE_LIMIT: Int(
    5,
    'Failed logins allowed per (email, client IP) per minute; further attempts for that email from that IP get 429',
    1
  ),
  LOGIN_EMAIL_RATE_LIMIT: Int(
    100,
    'Failed logins allowed per email from all IPs together per minute ' +
      '(keep it well above LOGIN_RATE_LIMIT: reaching it locks the email out everywhere)',
    1
  ),
  LOGIN_IP_RATE_LIMIT: Int(30, 'Failed logins allowed per client IP over all emails per minute', 1),
  API_KEY_FAILURE_LIMIT: Int(
    20,
    'Failed API-key lookups (unknown, revoked or expired keys) allowed per client IP per minute; ' +
      'further unknown keys from that IP get 429 without a lookup',
    1
  ),
  API_KEY_CACHE_TTL_MS: Int(
    10_000,
    'How long a replica caches an API key lookup (a revocation reaches other replicas within this); 0 = no cache',
    0
  ),
  PASSWORD_HASH_COST: Int(
    15,
    'scrypt cost of new password hashes, as log2(N) (15 = 32 MiB per hash); ' +
      'older hashes are upgraded at the next login',
    12,
    17
  ),

  // LLM
  LLM_PROVIDER: Enum(
    ['auto', 'gemini', 'offline', 'openai'] as const,
    'auto',
    'auto = gemini when GEMINI_API_KEY is set, openai when OPENAI_BASE_URL is set, ' +
      'else offline (refused when NODE_ENV=production: set offline explicitly)'
  ),
  GEMINI_API_KEY: Str('Google Gemini API key'),
  GEMINI_MODEL: Type.String({ default: 'gemini-2.5-flash', description: 'Fast model (travel agent, fallback)' }),
  GEMINI_PRO_MODEL: Type.String({
    default: 'gemini-2.5-pro',
    description: 'Pro model (content and innovation agents)'
  }),
  GEMINI_BASE_URL: Str('Override of the Gemini API base URL (proxies, tests)', { pattern: '^https?://.+' }),
  OPENAI_BASE_URL: Str('Base URL of an OpenAI-compatible server (e.g. a self-hosted model)', {
    pattern: '^https?://.+'
  }),
  OPENAI_API_KEY: Str('API key for the OpenAI-compatible server'),
  OPENAI_MODEL: Type.String({ default: 'gpt-4o-mini', description: 'Model name for the OpenAI-compatible server' }),
  LLM_TIMEOUT_MS: Int(60_000, 'Per-call timeout of an LLM request', 100),
  LLM_MAX_RETRIES: Int(2, 'Retries of a 429/5xx LLM answer', 0, 10),
  LLM_PRICING: Str('JSON overriding the price table: {"model":{"input":USD per 1M,"output":USD per 1M}}'),
  USAGE_WRITE_TIMEOUT_MS: Int(
    250,
    'Longest a request waits on a usage-ledger write; ' +
      'after it the row goes to the durable buffer (Redis, else a file under DATA_DIR) and the response proceeds',
    10
  ),
  // issue 16: the ledger's write mode; 'durable' keeps "a row before the call, its settlement before the reply".
  USAGE_WRITE_MODE: Enum(
    ['durable', 'behind'] as const,
    'durable',
    "'durable': a call's usage row is stored (or buffered) before the provider call and settled before the " +
      'reply (on PGlite in a DATA_DIR: appended to the usage journal there, then written every ' +
      'USAGE_JOURNAL_WRITE_MS); ' +
      "'behind': rows are written in one INSERT every USAGE_WRITE_BEHIND_MS without making requests " +
      'wait (much less CPU per call; a crash loses the rows of the last window)'
  ),
  USAGE_WRITE_BEHIND_MS: Int(10, "How long 'behind' mode gathers usage rows into one INSERT", 1, 1000),
  // issue 16: journaled rows are durable already and every reader of the ledger waits for them first, so a
  // longer window than 'behind''s costs a caller nothing and gives PGlite fewer statements: at one connection,
  // 13 % less CPU per uncached call (median of five rounds), about 40 % less for a sequential workflow's calls
  // (docs/benchmarks.md, twentieth pass).
  USAGE_JOURNAL_WRITE_MS: Int(
    100,
    "How long 'durable' mode on PGlite in a DATA_DIR gathers the usage rows of its journal into one INSERT " +
      '(they are on disk already; usage reads and budget seeds wait for them)',
    1,
    1000
  ),
  USAGE_FLUSH_INTERVAL_MS: Int(
    1000,
    'How often the usage buffer is replayed into the database and this replica heartbeats its pending calls',
    50
  ),
  USAGE_STALE_MS: Int(
    30_000,
    'A pending usage row whose replica has not heartbeated for this long is settled interrupted',
    100
  ),
  GOOGLE_MAPS_API_KEY: Str('Google Places API (New) key; hotel search uses real places when set'),
  GOOGLE_PLACES_BASE_URL: Type.String({
    default: 'https://places.googleapis.com',
    pattern: '^https?://.+',
    description: 'Places API base URL (tests)'
  }),
  LLM_RETRY_BASE_MS: Int(500, 'First backoff delay of an LLM retry (exponential with full jitter)', 1),
  LLM_RETRY_MAX_DELAY_MS: Int(20_000, 'Longest wait between LLM retries, also the cap on an honoured Retry-After', 1),
  CACHE_MAX_ENTRIES: Int(
    1000,
    'Entries kept by the in-memory response cache (LRU) when Redis is not configured or down',
    1
  ),
  CACHE_TTL_OVERRIDE_SECONDS: Type.Optional(
    Type.Integer({ minimum: 1, description: "Replaces every method's response-cache TTL (tests, debugging)" })
  ),

  // observability
  LANGSMITH_API_KEY: Str('Enables LangSmith export of agent, stream and workflow runs'),
  LANGSMITH_ENDPOINT: Type.String({
    default: 'https://api.smith.langchain.com',
    pattern: '^https?://.+',
    description: 'LangSmith API endpoint'
  }),
  LANGSMITH_PROJECT: Type.String({ default: 'amrikyy-agent', description: 'LangSmith project name' }),
  LANGSMITH_SAMPLE_RATE: Type.Number({
    default: 1,
    minimum: 0,
    maximum: 1,
    description: 'Share of traces exported to LangSmith (0–1, decided per trace tree)'
  }),
  LANGSMITH_FLUSH_TIMEOUT_MS: Int(5000, 'Longest wait at shutdown for buffered traces to reach LangSmith', 0),
  AGENT_TRACE_BUFFER: Int(1000, 'Recent traces kept in memory per agent for GET /api/agents/:agent/traces', 1, 100_000),
  AGENT_HEALTH_WINDOW_MS: Int(
    300_000,
    "Window of recent calls from which an agent's error rate (health) is computed",
    1000
  ),
  AGENT_STATS_FLUSH_MS: Int(
    1000,
    "Period at which each replica sends its agents' statistics to Redis (cluster totals lag by up to this)",
    10,
    60_000
  ),
  AGENT_HEALTH_MIN_CALLS: Int(5, 'Calls needed in the window before an agent can be judged degraded or unhealthy', 1),
  AGENT_HEALTH_DEGRADED_RATE: Type.Number({
    default: 0.2,
    minimum: 0,
    maximum: 1,
    description: 'Error rate above which an agent is degraded'
  }),
  AGENT_HEALTH_UNHEALTHY_RATE: Type.Number({
    default: 0.5,
    minimum: 0,
    maximum: 1,
    description: 'Error rate above which an agent is unhealthy (503 on its health route)'
  }),
  METRICS_PUBLIC: Bool(false, 'When true, /api/metrics needs no credential'),
  METRICS_TOKEN: Str('Bearer token that may read /api/metrics (for Prometheus)', { minLength: 16 }),
  METRICS_PREFIX: Type.String({
    default: '',
    pattern: '^([a-zA-Z_][a-zA-Z0-9_]*)?$',
    description: 'Prefix of every metric name'
  }),
  METRICS_PORT: Type.Optional(
    Type.Integer({
      minimum: 1,
      maximum: 65535,
      description:
        'Separate listener (on HOST) serving GET /metrics without auth or rate limits, for Prometheus; unset = off'
    })
  ),

  // limits
  RATE_LIMIT_WHITELIST: Type.String({
    default: '',
    description: 'Comma-separated client IPs or CIDR ranges never rate limited'
  }),
  RATE_LIMIT_GLOBAL_MAX: Int(100, 'Requests per window per caller (or client IP) across every non-public route', 0),
  RATE_LIMIT_ADMIN_MAX: Int(10, 'Requests per window per caller on admin routes (agent:manage, cache:manage)', 0),
  RATE_LIMIT_WINDOW_MS: Int(60_000, 'Window of every rate limit that does not set its own', 100),
  RATE_LIMIT_PREMIUM_MULTIPLIER: Int(2, 'Premium callers get this many times every limit', 1),
  RATE_LIMIT_EXEMPT_ROLES: Type.String({
    default: 'admin,internal',
    description: 'Comma-separated roles never rate limited'
  }),
  RATE_LIMIT_OVERRIDES: Str(
    'JSON limits by scope, overriding the route defaults: ' +
      '{"travel.searchFlights":5,"global":{"max":200,"timeWindowMs":60000}}'
  ),
  RATE_LIMIT_REDIS_RETRY_MS: Int(1000, 'Old name of REDIS_RETRY_MS, still honoured when REDIS_RETRY_MS is unset', 50),
  BUDGETS: Str(
    'JSON daily LLM budgets per role: {"user":{"tokens":100000,"usd":1}}; ' +
      'per-key budgets are stored with the key and win'
  ),
  MAX_CONCURRENT_STREAMS: Int(1000, 'Open SSE streams per process', 1),
  STREAM_REPLAY_TTL: Int(300, "Seconds a stream's events stay available for resume", 1),
  // Shorter retention once a stream has ended (its clients are done; a late resume still gets 204 or its tail).
  STREAM_ENDED_REPLAY_TTL: Int(
    60,
    "Seconds an ended stream's events stay available for resume (at most STREAM_REPLAY_TTL)",
    1
  ),

  // streaming
  MAX_CONCURRENT_STREAMS_PER_CALLER: Int(
    10,
    'Open SSE streams per caller, across every replica when REDIS_URL is set ' +
      '(the next one gets 429 AMK_TOO_MANY_STREAMS)',
    1
  ),
  STREAM_HEARTBEAT_MS: Int(15_000, 'Interval of the SSE comment heartbeat', 10),
  STREAM_RETRY_MS: Int(1000, 'Reconnection delay sent to EventSource in the `retry:` field', 0),
  // One display frame: a browser shows what arrives within a frame together anyway. The first event after a
  // quiet spell is not delayed (src/streams/pump.ts, WritePacer).
  STREAM_FLUSH_MS: Int(
    16,
    "Most milliseconds an SSE event waits so that faster ones share a socket write (0: every event's own write)",
    0
  ),
  STREAM_LOG_MAX_EVENTS: Int(
    20_000,
    'Most events kept per stream in the event log (older ones are trimmed; resuming from them reports a gap)',
    100
  ),
  STREAM_TICKET_TTL_MS: Int(60_000, 'Lifetime of an unused stream ticket', 1000),
  STREAM_SHUTDOWN_FLUSH_MS: Int(
    1000,
    'At shutdown, how long a client that reads nothing gets before its connection is cut',
    10
  ),

  // coordinator
  COORDINATOR_STEP_TIMEOUT_MS: Int(
    180_000,
    'Per-step timeout of a workflow that sets no timeoutMs (the provider call is aborted)',
    100
  ),
  COORDINATOR_POLL_MS: Int(
    1000,
    'Heartbeat of running workflows; how often cancel requests from other replicas and joined remote runs are checked',
    10
  ),
  COORDINATOR_STALE_MS: Int(
    30_000,
    'A running workflow whose replica has not reported for this long is marked failed (interrupted)',
    100
  ),
  COORDINATOR_JOIN_TIMEOUT_MS: Int(
    300_000,
    'Longest a repeated Idempotency-Key request waits on a run executing on another replica (then 409)',
    100
  ),
  IDEMPOTENCY_TTL_SECONDS: Int(86_400, 'Lifetime of an Idempotency-Key (same key + same body returns the same run)', 1)
})

/** Variables whose value must never be echoed in a configuration error (secrets, or URLs that may hold one). */
const SECRET_VARS = new Set([
  'JWT_SECRET',
  'ADMIN_PASSWORD',
  'VALID_API_KEYS',
  'SUPABASE_ANON_KEY',
  'SUPABASE_JWT_SECRET',
  'GEMINI_API_KEY',
  'OPENAI_API_KEY',
  'GOOGLE_MAPS_API_KEY',
  'LANGSMITH_API_KEY',
  'METRICS_TOKEN',
  'DATABASE_URL',
  'REDIS_URL'
])

export type Config = Static<typeof ConfigSchema>
export type ConfigInput = Record<string, string | undefined>

export class ConfigError extends Error {
  constructor (readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map(p => `  - ${p}`).join('\n')}`)
    this.name = 'ConfigError'
  }
}

const warningsOf = new WeakMap<Config, readonly string[]>()

/** Deprecation warnings of the environment a config was loaded from (the config plugin logs them at boot). */
export function configWarnings (config: Config): readonly string[] {
  return warningsOf.get(config) ?? []
}

const messageOf = (error: unknown) => error instanceof Error ? error.message : String(error)
const isConfig = (value: unknown): value is Config => Value.Check(ConfigSchema, value)
const properties: Record<string, TSchema & { anyOf?: Array<{ const: string }> }> = ConfigSchema.properties

/** Parses an environment (process.env by default); throws ConfigError listing every bad variable. */
export function loadConfig (env: ConfigInput = process.env): Config {
  const legacy = legacyEnvironment(env)
  const raw: Record<string, string> = {}
  for (const key of Object.keys(properties)) {
    const value = env[key] || legacy.values[key]
    if (value !== undefined && value !== '') raw[key] = value
  }
  // Default and Convert work in place: give them a copy so messages quote what was actually set.
  const converted = Value.Convert(ConfigSchema, Value.Default(ConfigSchema, { ...raw }))
  const value: Record<string, unknown> = typeof converted === 'object' && converted !== null ? { ...converted } : {}
  const problems = new Map<string, string>()
  // One variable at a time: TypeBox stops collecting errors after 8, and a bad enum alone reports one per member.
  for (const [name, schema] of Object.entries(properties)) {
    if (value[name] === undefined) continue
    const [error] = Value.Errors(schema, value[name])
    if (!error) continue
    const allowed = schema.anyOf?.map(s => s.const).join(', ')
    const shown = SECRET_VARS.has(name) ? '(value hidden)' : JSON.stringify(raw[name])
    problems.set(name, `${name}=${shown}: ${allowed ? `must be one of ${allowed}` : error.message}`)
  }
  if (value.NODE_ENV === 'production' && !value.JWT_SECRET && !problems.has('JWT_SECRET')) {
    problems.set('JWT_SECRET', 'JWT_SECRET: required when NODE_ENV=production')
  }
  if (
    value.NODE_ENV === 'production' &&
    value.LLM_PROVIDER === 'auto' &&
    !value.GEMINI_API_KEY &&
    !value.OPENAI_BASE_URL
  ) {
    // Production never serves the offline placeholders by accident: only when chosen explicitly.
    problems.set(
      'LLM_PROVIDER',
      'LLM_PROVIDER: NODE_ENV=production needs GEMINI_API_KEY or OPENAI_BASE_URL; ' +
        'set LLM_PROVIDER=offline to serve offline placeholder answers on purpose'
    )
  }
  for (const [provider, needs] of [['gemini', 'GEMINI_API_KEY'], ['openai', 'OPENAI_BASE_URL']] as const) {
    if (value.LLM_PROVIDER === provider && !value[needs] && !problems.has(needs)) {
      problems.set(needs, `${needs}: required when LLM_PROVIDER=${provider}`)
    }
  }
  if (typeof value.VALID_API_KEYS === 'string' && !problems.has('VALID_API_KEYS')) {
    try { parseSeedKeys(value.VALID_API_KEYS) } catch (error) { problems.set('VALID_API_KEYS', messageOf(error)) }
  }
  if (Boolean(value.ADMIN_EMAIL) !== Boolean(value.ADMIN_PASSWORD)) {
    problems.set('ADMIN_PASSWORD', 'ADMIN_EMAIL and ADMIN_PASSWORD must be set together')
  }
  if (typeof value.LLM_PRICING === 'string') {
    try { JSON.parse(value.LLM_PRICING) } catch { problems.set('LLM_PRICING', 'LLM_PRICING: must be JSON') }
  }
  for (const [name, problem] of [...limitConfigProblems(value), ...legacy.problems]) problems.set(name, problem)
  if (problems.size > 0 || !isConfig(value)) throw new ConfigError([...problems.values()])
  warningsOf.set(value, legacy.warnings)
  return value
}

/** TRUST_PROXY as Fastify's trustProxy option. */
export function trustProxy (value: string): boolean | number | string[] {
  if (value === 'true') return true
  if (value === 'false' || value === '') return false
  if (/^\d+$/.test(value)) return Number(value)
  return csv(value)
}

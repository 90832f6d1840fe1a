-- Initial schema: users, API keys, the usage ledger, workflow runs and idempotency keys (DESIGN §10).
CREATE TABLE users (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  email text NOT NULL,
  password_hash text NOT NULL,
  role text NOT NULL CHECK (role IN ('user', 'premium', 'admin', 'internal')),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TABLE api_keys (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name text NOT NULL,
  prefix text NOT NULL,
  key_hash text NOT NULL UNIQUE,
  role text NOT NULL CHECK (role IN ('user', 'premium', 'admin', 'internal')),
  source text NOT NULL DEFAULT 'api' CHECK (source IN ('api', 'env', 'dev')),
  created_by text,
  daily_token_budget bigint,
  daily_cost_budget_usd numeric(14, 6),
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz,
  revoked_at timestamptz,
  last_used_at timestamptz
);

CREATE TABLE usage_ledger (
  id bigserial PRIMARY KEY,
  created_at timestamptz NOT NULL DEFAULT now(),
  caller_id text NOT NULL,
  caller_type text NOT NULL,
  role text,
  agent text NOT NULL,
  method text NOT NULL,
  model text NOT NULL,
  input_tokens integer NOT NULL DEFAULT 0,
  output_tokens integer NOT NULL DEFAULT 0,
  cost_usd numeric(16, 8) NOT NULL DEFAULT 0,
  status text NOT NULL,
  duration_ms integer NOT NULL DEFAULT 0,
  estimated boolean NOT NULL DEFAULT false,
  trace_id text,
  stream_id text,
  run_id text
);
CREATE INDEX usage_ledger_caller_time ON usage_ledger (caller_id, created_at);
CREATE INDEX usage_ledger_time ON usage_ledger (created_at);

CREATE TABLE workflow_runs (
  id uuid PRIMARY KEY,
  caller_id text NOT NULL,
  strategy text NOT NULL,
  workflow_name text,
  status text NOT NULL,
  input jsonb,
  steps jsonb NOT NULL DEFAULT '[]'::jsonb,
  result jsonb,
  error jsonb,
  usage jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  started_at timestamptz,
  finished_at timestamptz,
  duration_ms integer
);
CREATE INDEX workflow_runs_caller ON workflow_runs (caller_id, created_at);

CREATE TABLE idempotency_keys (
  caller_id text NOT NULL,
  key text NOT NULL,
  request_hash text NOT NULL,
  run_id uuid NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  PRIMARY KEY (caller_id, key)
);

-- Coordinator runs (DESIGN §9): a cancel request any replica can set and the running replica polls, a
-- heartbeat from the replica running a run (a stale one means that replica went away), the epoch of
-- the coordinator statistics (POST /api/coordinator/stats/reset), and indexes for stats and expiry.
ALTER TABLE workflow_runs ADD COLUMN cancel_requested_at timestamptz;
ALTER TABLE workflow_runs ADD COLUMN heartbeat_at timestamptz;
CREATE INDEX workflow_runs_created ON workflow_runs (created_at);
CREATE INDEX workflow_runs_running ON workflow_runs (id) WHERE status = 'running';
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);
CREATE TABLE coordinator_stats_resets (
  id bigserial PRIMARY KEY,
  reset_at timestamptz NOT NULL DEFAULT now(),
  reset_by text
);

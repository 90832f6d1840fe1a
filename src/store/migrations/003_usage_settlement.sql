-- Usage that is never lost (DESIGN §15): every provider call gets its row before it starts ('pending',
-- with the replica that runs it) and settles exactly once (success, error, cancelled; 'interrupted' by the
-- sweep when that replica stopped reporting — a late real settlement still replaces it). call_id makes
-- every write a replayable upsert; usage_instances holds one heartbeat per running replica.
ALTER TABLE usage_ledger ADD COLUMN call_id uuid;
ALTER TABLE usage_ledger ADD COLUMN instance_id text;
ALTER TABLE usage_ledger ADD COLUMN settled_at timestamptz;
CREATE UNIQUE INDEX usage_ledger_call_id ON usage_ledger (call_id);
CREATE INDEX usage_ledger_pending ON usage_ledger (instance_id) WHERE status = 'pending';
CREATE TABLE usage_instances (
  instance_id text PRIMARY KEY,
  heartbeat_at timestamptz NOT NULL DEFAULT now()
);

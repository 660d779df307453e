-- Lifecycle after creation: deletion, expiry, quotas; and the idempotency cache.

ALTER TABLE resources DROP CONSTRAINT resources_status_check;
ALTER TABLE resources ADD CONSTRAINT resources_status_check
    CHECK (status IN ('pending', 'active', 'suspended', 'deleting', 'failed', 'deleted'));

-- Why a row left service: 'expired' (TTL), 'deleted' (by its owner), 'abandoned' (a
-- provision that never finished). Set when the row enters 'deleting'.
ALTER TABLE resources ADD COLUMN end_reason text;
-- The provider's last measurement ({storage_bytes, connections, ...}) and when it was taken.
ALTER TABLE resources ADD COLUMN usage jsonb;
ALTER TABLE resources ADD COLUMN usage_checked_at timestamptz;
ALTER TABLE resources ADD COLUMN suspended_at timestamptz;
ALTER TABLE resources ADD COLUMN ended_at timestamptz;

-- Caps look up one fingerprint's rows of today and its live rows.
CREATE INDEX resources_fingerprint_created ON resources (fingerprint, created_at);
-- The reaper and the quota pass scan live rows by deadline.
CREATE INDEX resources_live_usage ON resources (usage_checked_at NULLS FIRST)
    WHERE status IN ('active', 'suspended');

-- Responses of idempotent routes, per caller scope. Bodies may hold credentials, so they
-- are sealed like resource credentials.
CREATE TABLE idempotency (
    scope        text NOT NULL,
    route        text NOT NULL,
    key_hash     text NOT NULL,
    request_hash text NOT NULL,
    state        text NOT NULL CHECK (state IN ('running', 'done')),
    -- A 'running' entry older than this was abandoned (its host died) and may be retaken.
    locked_until timestamptz NOT NULL,
    status       integer,
    sealed_body  bytea,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (scope, route, key_hash)
);

CREATE INDEX idempotency_expires ON idempotency (expires_at);

-- Rollouts are leased by the replica running them; a lease that lapses (its replica died)
-- lets any other replica take the rollout over.
ALTER TABLE deployments
    ADD COLUMN rollout_lease_owner uuid,
    ADD COLUMN rollout_lease_until timestamptz,
    ADD COLUMN rollout_attempts integer NOT NULL DEFAULT 0;

CREATE INDEX deployments_rolling_out ON deployments (updated_at)
    WHERE status IN ('building', 'deploying');

-- Every uploaded provider version, by content, so every replica can load it.
CREATE TABLE provider_versions (
    sha256 text PRIMARY KEY,
    wasm bytea NOT NULL,
    source text NOT NULL,
    uploaded_at timestamptz NOT NULL
);

-- Which version of each provider is live on every replica (NULL: taken out of service).
-- `changed` orders the changes replicas converge on.
CREATE TABLE provider_live (
    name text PRIMARY KEY,
    sha256 text REFERENCES provider_versions (sha256),
    changed bigint NOT NULL
);
CREATE SEQUENCE provider_live_changes;

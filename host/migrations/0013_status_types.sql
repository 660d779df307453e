-- Statuses become types of their own, so a misspelt status is an error in the database and
-- in the host (which maps each to a Rust enum), not a row no query ever finds again.

CREATE TYPE resource_status AS ENUM ('pending', 'active', 'suspended', 'deleting', 'failed', 'deleted');
CREATE TYPE deployment_status AS ENUM ('building', 'deploying', 'healthy', 'failed', 'stopped');

-- Partial indexes name statuses as text; they are rebuilt around the new type.
DROP INDEX resources_fingerprint;
DROP INDEX resources_live_usage;
ALTER TABLE resources DROP CONSTRAINT resources_status_check;
ALTER TABLE resources ALTER COLUMN status TYPE resource_status USING status::resource_status;
CREATE INDEX resources_fingerprint ON resources (fingerprint, kind)
    WHERE status IN ('pending', 'active', 'suspended');
CREATE INDEX resources_live_usage ON resources (usage_checked_at NULLS FIRST)
    WHERE status IN ('active', 'suspended');

ALTER TABLE deployments DROP CONSTRAINT deployments_status_check;
ALTER TABLE deployments ALTER COLUMN status TYPE deployment_status USING status::deployment_status;

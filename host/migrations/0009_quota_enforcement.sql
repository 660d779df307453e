-- A quota verdict (suspend or resume) the provider failed to apply: kept until an attempt
-- succeeds, so operators see a resource that keeps growing past its limit.
ALTER TABLE resources
    ADD COLUMN enforcement_error text,
    ADD COLUMN enforcement_failing_since timestamptz,
    ADD COLUMN enforcement_attempts integer NOT NULL DEFAULT 0;

CREATE INDEX resources_enforcement_failing ON resources (enforcement_failing_since)
    WHERE enforcement_error IS NOT NULL;

-- What the dashboard draws and lists.

-- The meter's measurements over time: every sample for a day, then one per hour (the
-- hour's largest) for seven days; older ones are dropped.
CREATE TABLE usage_samples (
    resource_id   uuid NOT NULL,
    at            timestamptz NOT NULL,
    hourly        boolean NOT NULL DEFAULT false,
    storage_bytes bigint NOT NULL,
    connections   integer,
    PRIMARY KEY (resource_id, hourly, at)
);
CREATE INDEX usage_samples_at ON usage_samples (at);

-- When a claim moved an anonymous resource to a team (the activity list shows it).
ALTER TABLE resources ADD COLUMN claimed_at timestamptz;

-- The first characters of an API key, so a person can tell keys apart (never the secret).
ALTER TABLE api_keys ADD COLUMN prefix text;

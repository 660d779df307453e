-- A team's default lifetime for new apps: `permanent` gives them the tier's lifetime (none
-- on paid tiers), `auto_24h` ends them after a day unless kept (POST .../make-permanent).
ALTER TABLE teams ADD COLUMN default_deployment_ttl_policy text NOT NULL DEFAULT 'permanent'
    CHECK (default_deployment_ttl_policy IN ('auto_24h', 'permanent'));

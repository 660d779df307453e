-- Stacks: several deployed services sharing one private network.
CREATE TABLE stacks (
    id          uuid PRIMARY KEY,
    -- Public handle, `stk-<8 hex>`.
    slug        text NOT NULL UNIQUE,
    fingerprint text NOT NULL,
    name        text NOT NULL,
    manifest    text NOT NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz
);

-- Deployed apps: one row per `deploy` resource (a standalone app or a stack service).
-- Written just before its resource row (the upload must be stored before the provision
-- saga runs), so there is no foreign key; reads join `resources`.
CREATE TABLE deployments (
    resource_id uuid PRIMARY KEY,
    -- 8 hex characters: the public app id, also the start of the URL's slug.
    app_id      text NOT NULL UNIQUE,
    -- The first DNS label of the app's URL; none for a stack service that is not exposed.
    slug        text UNIQUE,
    fingerprint text NOT NULL,
    name        text NOT NULL,
    port        integer NOT NULL,
    -- nonce || AES-256-GCM ciphertext of the app's env vars (JSON object).
    sealed_env  bytea NOT NULL,
    status      text NOT NULL CHECK (status IN ('building', 'deploying', 'healthy', 'failed', 'stopped')),
    -- Bumped by each redeploy; a rollout only records its outcome while it is current.
    generation  integer NOT NULL DEFAULT 1,
    -- Loopback address the proxy forwards to, while healthy.
    upstream    text,
    error       text,
    -- The failure autopsy: reason, exit_code, last_lines, hint, occurred_at.
    failure     jsonb,
    stack_id    uuid REFERENCES stacks (id) ON DELETE CASCADE,
    service     text,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX deployments_owner ON deployments (fingerprint, name);
CREATE INDEX deployments_stack ON deployments (stack_id);

-- Uploaded build contexts, one per rollout; kept while the app lives (redeploys rebuild
-- from them), removed with it.
CREATE TABLE deploy_sources (
    resource_id uuid NOT NULL REFERENCES deployments (resource_id) ON DELETE CASCADE,
    generation  integer NOT NULL,
    context     bytea NOT NULL,
    PRIMARY KEY (resource_id, generation)
);

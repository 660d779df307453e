-- Resources every provider creates, and the private key-value state of providers.

CREATE TABLE resources (
    id                 uuid PRIMARY KEY,
    -- The bearer handle agents use in URLs; distinct from the internal id.
    token              uuid NOT NULL UNIQUE,
    kind               text NOT NULL,
    name               text NOT NULL,
    env                text NOT NULL,
    tier               text NOT NULL,
    status             text NOT NULL CHECK (status IN ('pending', 'active', 'suspended', 'failed', 'deleted')),
    provider           text NOT NULL,
    provider_version   text NOT NULL,
    fingerprint        text,
    limits             jsonb NOT NULL,
    -- nonce || AES-256-GCM ciphertext of the credentials and provider state.
    sealed_credentials bytea,
    request_id         text NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    expires_at         timestamptz
);

CREATE INDEX resources_status_expires ON resources (status, expires_at);
CREATE INDEX resources_fingerprint ON resources (fingerprint, kind) WHERE status IN ('pending', 'active', 'suspended');

CREATE TABLE provider_kv (
    provider   text NOT NULL,
    key        text NOT NULL,
    value      bytea NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, key)
);

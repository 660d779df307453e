-- Signing keys the host generates once and keeps: NATS operator and system account.
-- The seed is sealed with the host's seal key; only the public half is readable.
CREATE TABLE host_keys (
    name text PRIMARY KEY,
    public_key text NOT NULL,
    sealed_seed bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

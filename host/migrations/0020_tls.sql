-- HTTPS at the edge. Every replica serves the same certificates, so they live here; private
-- keys and the ACME account are sealed with the host's seal key.

-- The ACME account of each directory the host has used.
CREATE TABLE acme_accounts (
    directory text PRIMARY KEY,
    credentials bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- One row per DNS name the host serves over HTTPS ("*.apps.example.com", an app's own name,
-- a custom domain). `status`: issuing (no certificate yet, or the last one lapsed), active,
-- failed (the last attempt failed and no valid certificate is held). Any replica may work on
-- a row whose `next_attempt_at` has come; taking it pushes `next_attempt_at` out (a lease).
CREATE TABLE tls_certificates (
    name text PRIMARY KEY,
    challenge text NOT NULL,
    status text NOT NULL,
    chain_pem text,
    key_sealed bytea,
    not_before timestamptz,
    not_after timestamptz,
    last_error text,
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tls_certificates_due ON tls_certificates (next_attempt_at);

-- HTTP-01 answers, so whichever replica the ACME server reaches can give them.
CREATE TABLE acme_challenges (
    token text PRIMARY KEY,
    key_authorization text NOT NULL,
    expires_at timestamptz NOT NULL
);

-- Names owners bring for their apps. A domain is proven by a TXT record holding the row's
-- `verification_token`. Any number of apps may ask for a name (so nobody can hold one they do
-- not own just by asking first); the first to prove it gets it, and the other requests go.
CREATE TABLE custom_domains (
    domain text NOT NULL,
    resource_id uuid NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    verification_token text NOT NULL,
    verified_at timestamptz,
    last_checked_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (domain, resource_id)
);
CREATE UNIQUE INDEX custom_domains_proven ON custom_domains (domain) WHERE verified_at IS NOT NULL;
CREATE INDEX custom_domains_resource ON custom_domains (resource_id);

-- Accounts: a claim turns an anonymous network's resources into a team's.
CREATE TABLE teams (
    id         uuid PRIMARY KEY,
    name       text NOT NULL,
    tier       text NOT NULL,
    created_at timestamptz NOT NULL
);

CREATE TABLE users (
    id         uuid PRIMARY KEY,
    -- Lowercased address.
    email      text NOT NULL UNIQUE,
    team_id    uuid NOT NULL REFERENCES teams (id),
    created_at timestamptz NOT NULL
);

ALTER TABLE resources ADD COLUMN team_id uuid REFERENCES teams (id);
CREATE INDEX resources_team ON resources (team_id, created_at) WHERE team_id IS NOT NULL;

-- Links sent by email (a claim or a sign-in): single use, short-lived, stored hashed.
CREATE TABLE email_links (
    token_hash  bytea PRIMARY KEY,
    email       text NOT NULL,
    purpose     text NOT NULL CHECK (purpose IN ('claim', 'sign_in')),
    -- A claim moves the resources of this network.
    fingerprint text,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);

-- Upgrade tokens already used for a claim: each claims once.
CREATE TABLE claimed_tokens (
    jti        text PRIMARY KEY,
    email      text NOT NULL,
    claimed_at timestamptz NOT NULL
);

-- Sessions ended by a logout before their expiry.
CREATE TABLE revoked_sessions (
    jti        text PRIMARY KEY,
    expires_at timestamptz NOT NULL
);

-- Long-lived keys for programs (a CLI); stored hashed, shown once.
CREATE TABLE api_keys (
    id           uuid PRIMARY KEY,
    team_id      uuid NOT NULL REFERENCES teams (id),
    user_id      uuid NOT NULL REFERENCES users (id),
    name         text NOT NULL,
    key_hash     bytea NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL,
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX api_keys_team ON api_keys (team_id);

-- A team's secrets by environment and name, every write a new version. Values are sealed
-- (nonce || AES-256-GCM) with the team, env and key as associated data.
CREATE TABLE vault_entries (
    team_id    uuid NOT NULL,
    env        text NOT NULL,
    key        text NOT NULL,
    version    integer NOT NULL,
    sealed     bytea NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (team_id, env, key, version)
);

-- Every read and write of a secret: who, how, which version.
CREATE TABLE vault_events (
    id         bigserial PRIMARY KEY,
    team_id    uuid NOT NULL,
    env        text NOT NULL,
    key        text NOT NULL,
    version    integer,
    actor      text NOT NULL,
    action     text NOT NULL,
    request_id text NOT NULL,
    at         timestamptz NOT NULL
);
CREATE INDEX vault_events_entry ON vault_events (team_id, env, key, at);

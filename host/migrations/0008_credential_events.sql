-- Every time a person or program saw or replaced a resource's credentials after creation.
CREATE TABLE credential_events (
    id             bigserial PRIMARY KEY,
    resource_token uuid NOT NULL,
    team_id        uuid NOT NULL,
    -- The signed-in user's email (for an API key, the key owner's).
    actor          text NOT NULL,
    action         text NOT NULL CHECK (action IN ('reveal', 'rotate')),
    via            text NOT NULL CHECK (via IN ('api', 'dashboard')),
    request_id     text NOT NULL,
    at             timestamptz NOT NULL
);

CREATE INDEX credential_events_by_resource ON credential_events (resource_token, at DESC);

-- The CLI's device flow: a program waits while its user approves it in a browser.
CREATE TABLE cli_sessions (
    id             uuid PRIMARY KEY,
    status         text NOT NULL CHECK (status IN ('pending', 'approved', 'collected')),
    -- The API key minted at approval, sealed, until the program collects it once.
    sealed_api_key bytea,
    user_id        uuid REFERENCES users (id),
    created_at     timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL
);

-- Deletes of paid teams' apps and stacks wait for a person to confirm them through an
-- emailed link. `target` is the app's resource token or the stack's id.
CREATE TABLE pending_deletions (
    target     uuid PRIMARY KEY,
    kind       text NOT NULL CHECK (kind IN ('deployment', 'stack')),
    label      text NOT NULL,
    -- How the API names it: the app's id or the stack's slug.
    handle     text NOT NULL,
    team_id    uuid NOT NULL,
    token_hash bytea NOT NULL UNIQUE,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);

-- An API key made with `skip_delete_confirmation` may delete at once with
-- `X-Skip-Email-Confirmation: yes`.
ALTER TABLE api_keys ADD COLUMN skip_delete_confirmation boolean NOT NULL DEFAULT false;

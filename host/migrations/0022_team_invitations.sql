-- Invitations to join a team: emailed links, kept as hashes, good for a week and once.
CREATE TABLE team_invitations (
    id          uuid PRIMARY KEY,
    team_id     uuid NOT NULL REFERENCES teams (id),
    -- Lowercased address of the person invited.
    email       text NOT NULL,
    -- The address of the member who sent it.
    invited_by  text NOT NULL,
    token_hash  bytea NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    accepted_at timestamptz,
    revoked_at  timestamptz
);
CREATE INDEX team_invitations_team ON team_invitations (team_id, created_at);

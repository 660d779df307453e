-- Billing events applied, by their id: a replayed event changes nothing, and an event
-- older than the newest one applied to its team (delivered late or replayed under a new
-- id) does not undo it.
CREATE TABLE billing_events (
    id text PRIMARY KEY,
    team_id uuid NOT NULL,
    created_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL
);
CREATE INDEX billing_events_by_team ON billing_events (team_id, created_at DESC);

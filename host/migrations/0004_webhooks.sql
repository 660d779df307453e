-- Where senders deliver: a receive id of its own per webhook, so the URL handed to third
-- parties is not the owner's token (which reads and deletes the resource).
CREATE TABLE webhook_receivers (
    receive_id uuid PRIMARY KEY,
    resource_id uuid NOT NULL UNIQUE REFERENCES resources (id) ON DELETE CASCADE
);

-- Requests received by webhook resources: a ring of the newest N per resource.
CREATE TABLE webhook_requests (
    id bigserial PRIMARY KEY,
    resource_id uuid NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    received_at timestamptz NOT NULL,
    method text NOT NULL,
    path text NOT NULL,
    query text NOT NULL,
    headers jsonb NOT NULL,
    body bytea NOT NULL
);
CREATE INDEX webhook_requests_newest ON webhook_requests (resource_id, id DESC);

-- A claim link moves the resources its claimer proved it holds (their upgrade JWTs or
-- tokens), never a whole network: `fingerprint` is no longer written.
ALTER TABLE email_links ADD COLUMN resource_tokens uuid[];

-- An app deployed from a prebuilt image rather than an uploaded build context: the
-- reference it was deployed with (each rollout pins it to the digest it has then).
ALTER TABLE deployments ADD COLUMN image text;

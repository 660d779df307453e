//! The idempotency cache: one entry per (scope, route, key), shared by every host replica.

use chrono::{DateTime, Duration, Utc};

use super::Store;

/// Identifies one cache entry.
pub struct EntryKey<'a> {
    pub scope: &'a str,
    pub route: &'a str,
    pub key_hash: &'a str,
}

/// What a request finds when it tries to take a key.
pub enum Claim {
    /// The key is ours: run the request, then `complete` or `release` it.
    Taken,
    /// Another request with this key is still running.
    InProgress,
    /// The key was used with a different request body.
    Mismatch,
    /// A finished answer to replay: status and sealed body.
    Done { status: u16, sealed_body: Vec<u8> },
}

/// request_hash, state, status, sealed_body.
type StoredEntry = (String, String, Option<i32>, Option<Vec<u8>>);

/// How long a `running` entry holds its key before it counts as abandoned.
const RUNNING_LEASE: Duration = Duration::seconds(60);

impl Store {
    /// Takes `key` for a request, unless a live entry already holds it. An expired entry,
    /// or a `running` one whose host died, is taken over.
    pub async fn claim_idempotency_key(
        &self,
        key: &EntryKey<'_>,
        request_hash: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> sqlx::Result<Claim> {
        // Two tries: the entry found on conflict may vanish (released) before we read it.
        for _ in 0..2 {
            let taken = sqlx::query(
                "INSERT INTO idempotency AS i (scope, route, key_hash, request_hash, state,
                                               locked_until, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, 'running', $5, $6, $7)
                 ON CONFLICT (scope, route, key_hash) DO UPDATE
                    SET request_hash = EXCLUDED.request_hash, state = 'running',
                        locked_until = EXCLUDED.locked_until, status = NULL, sealed_body = NULL,
                        created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at
                  WHERE i.expires_at <= $6 OR (i.state = 'running' AND i.locked_until <= $6)",
            )
            .bind(key.scope)
            .bind(key.route)
            .bind(key.key_hash)
            .bind(request_hash)
            .bind(now + RUNNING_LEASE)
            .bind(now)
            .bind(now + ttl)
            .execute(&self.pool)
            .await?;
            if taken.rows_affected() == 1 {
                return Ok(Claim::Taken);
            }
            let existing: Option<StoredEntry> = sqlx::query_as(
                "SELECT request_hash, state, status, sealed_body FROM idempotency
                  WHERE scope = $1 AND route = $2 AND key_hash = $3",
            )
            .bind(key.scope)
            .bind(key.route)
            .bind(key.key_hash)
            .fetch_optional(&self.pool)
            .await?;
            match existing {
                None => continue,
                Some((hash, _, _, _)) if hash != request_hash => return Ok(Claim::Mismatch),
                Some((_, state, Some(status), Some(sealed_body))) if state == "done" => {
                    return Ok(Claim::Done {
                        status: u16::try_from(status).unwrap_or(500),
                        sealed_body,
                    });
                }
                Some(_) => return Ok(Claim::InProgress),
            }
        }
        Ok(Claim::InProgress)
    }

    /// Stores the answer to replay for the rest of the entry's life.
    pub async fn complete_idempotency_key(
        &self,
        key: &EntryKey<'_>,
        status: u16,
        sealed_body: &[u8],
    ) -> sqlx::Result<()> {
        sqlx::query(
            "UPDATE idempotency SET state = 'done', status = $4, sealed_body = $5
              WHERE scope = $1 AND route = $2 AND key_hash = $3",
        )
        .bind(key.scope)
        .bind(key.route)
        .bind(key.key_hash)
        .bind(i32::from(status))
        .bind(sealed_body)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Frees the key (the answer must not be replayed, e.g. a 5xx).
    pub async fn release_idempotency_key(&self, key: &EntryKey<'_>) -> sqlx::Result<()> {
        sqlx::query("DELETE FROM idempotency WHERE scope = $1 AND route = $2 AND key_hash = $3")
            .bind(key.scope)
            .bind(key.route)
            .bind(key.key_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Deletes entries that expired before `now`, at most `limit` per call.
    pub async fn purge_idempotency(&self, now: DateTime<Utc>, limit: i64) -> sqlx::Result<u64> {
        let done = sqlx::query(
            "DELETE FROM idempotency WHERE ctid IN
               (SELECT ctid FROM idempotency WHERE expires_at <= $1 LIMIT $2)",
        )
        .bind(now)
        .bind(limit)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}

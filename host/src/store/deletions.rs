//! Deletes waiting for a person's confirmation.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Store;

/// A delete waiting for its confirmation.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PendingDeletion {
    pub target: Uuid,
    /// `deployment` or `stack`.
    pub kind: String,
    /// What a person reads: the app's or stack's name and id.
    pub label: String,
    /// How the API names it: the app's id or the stack's slug.
    pub handle: String,
    pub team_id: Uuid,
    pub expires_at: DateTime<Utc>,
}

impl Store {
    /// Records a pending delete of `target`, unless one is already pending (`false`). An
    /// expired one is replaced.
    pub async fn begin_deletion(
        &self,
        pending: &PendingDeletion,
        token_hash: &[u8],
        now: DateTime<Utc>,
    ) -> sqlx::Result<bool> {
        let done = sqlx::query(
            "INSERT INTO pending_deletions (target, kind, label, handle, team_id, token_hash,
                 created_at, expires_at)
             VALUES ($1, $2, $3, $8, $4, $5, $6, $7)
             ON CONFLICT (target) DO UPDATE
                SET token_hash = EXCLUDED.token_hash, created_at = EXCLUDED.created_at,
                    expires_at = EXCLUDED.expires_at, label = EXCLUDED.label
              WHERE pending_deletions.expires_at <= $6",
        )
        .bind(pending.target)
        .bind(&pending.kind)
        .bind(&pending.label)
        .bind(pending.team_id)
        .bind(token_hash)
        .bind(now)
        .bind(pending.expires_at)
        .bind(&pending.handle)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The live pending delete a confirmation token stands for.
    pub async fn pending_deletion(
        &self,
        token_hash: &[u8],
        now: DateTime<Utc>,
    ) -> sqlx::Result<Option<PendingDeletion>> {
        sqlx::query_as(
            "SELECT target, kind, label, handle, team_id, expires_at FROM pending_deletions
             WHERE token_hash = $1 AND expires_at > $2",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
    }

    /// Ends the pending delete of `target` if `token_hash` is its live token (only one
    /// confirmation wins); whether it did.
    pub async fn confirm_deletion(
        &self,
        target: Uuid,
        token_hash: &[u8],
        now: DateTime<Utc>,
    ) -> sqlx::Result<bool> {
        let done = sqlx::query(
            "DELETE FROM pending_deletions
             WHERE target = $1 AND token_hash = $2 AND expires_at > $3",
        )
        .bind(target)
        .bind(token_hash)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Withdraws the live pending delete of `target`; whether there was one.
    pub async fn cancel_deletion(&self, target: Uuid, now: DateTime<Utc>) -> sqlx::Result<bool> {
        let done =
            sqlx::query("DELETE FROM pending_deletions WHERE target = $1 AND expires_at > $2")
                .bind(target)
                .bind(now)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The addresses of a team's people.
    pub async fn team_emails(&self, team_id: Uuid) -> sqlx::Result<Vec<String>> {
        sqlx::query_scalar("SELECT email FROM users WHERE team_id = $1 ORDER BY email")
            .bind(team_id)
            .fetch_all(&self.pool)
            .await
    }

    /// Whether the live API key with this hash may skip delete confirmations, and its team.
    pub async fn key_skips_delete_confirmation(
        &self,
        key_hash: &[u8],
    ) -> sqlx::Result<Option<Uuid>> {
        sqlx::query_scalar(
            "SELECT team_id FROM api_keys
             WHERE key_hash = $1 AND revoked_at IS NULL AND skip_delete_confirmation",
        )
        .bind(key_hash)
        .fetch_optional(&self.pool)
        .await
    }
}

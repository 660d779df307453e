//! Rows of the `resources` table.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Store;

/// A row about to be inserted as `pending`.
pub struct NewResource<'a> {
    pub id: Uuid,
    pub token: Uuid,
    pub kind: &'a str,
    pub name: &'a str,
    pub env: &'a str,
    pub tier: &'a str,
    pub provider: &'a str,
    pub provider_version: &'a str,
    pub fingerprint: Option<&'a str>,
    pub limits: serde_json::Value,
    pub request_id: &'a str,
    pub expires_at: Option<DateTime<Utc>>,
}

impl Store {
    /// Inserts a `pending` row: the first step of the provision saga.
    pub async fn insert_pending(&self, new: &NewResource<'_>) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO resources (id, token, kind, name, env, tier, status, provider,
                                    provider_version, fingerprint, limits, request_id, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8, $9, $10, $11, $12)",
        )
        .bind(new.id)
        .bind(new.token)
        .bind(new.kind)
        .bind(new.name)
        .bind(new.env)
        .bind(new.tier)
        .bind(new.provider)
        .bind(new.provider_version)
        .bind(new.fingerprint)
        .bind(&new.limits)
        .bind(new.request_id)
        .bind(new.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Stores the sealed credentials and flips `pending` to `active`. Returns false when the
    /// row was no longer pending (so the caller must not report success).
    pub async fn activate(&self, id: Uuid, sealed_credentials: &[u8]) -> sqlx::Result<bool> {
        let done = sqlx::query(
            "UPDATE resources SET status = 'active', sealed_credentials = $2, updated_at = now()
             WHERE id = $1 AND status = 'pending'",
        )
        .bind(id)
        .bind(sealed_credentials)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Marks a row `failed` and drops its credentials: the undo of `insert_pending`.
    pub async fn mark_failed(&self, id: Uuid) -> sqlx::Result<()> {
        sqlx::query(
            "UPDATE resources SET status = 'failed', sealed_credentials = NULL, updated_at = now()
             WHERE id = $1",
        )
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

//! The audit trail of credential reveals and rotations.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Store;

/// One reveal or rotation of a resource's credentials.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CredentialEvent {
    pub resource_token: Uuid,
    pub team_id: Uuid,
    pub actor: String,
    /// `reveal` or `rotate`.
    pub action: String,
    /// `api` or `dashboard`.
    pub via: String,
    pub request_id: String,
    pub at: DateTime<Utc>,
}

impl Store {
    pub async fn record_credential_event(&self, event: &CredentialEvent) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO credential_events (resource_token, team_id, actor, action, via, request_id, at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(event.resource_token)
        .bind(event.team_id)
        .bind(&event.actor)
        .bind(&event.action)
        .bind(&event.via)
        .bind(&event.request_id)
        .bind(event.at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The newest `limit` events of one resource, newest first.
    pub async fn credential_events(
        &self,
        resource_token: Uuid,
        limit: i64,
    ) -> sqlx::Result<Vec<CredentialEvent>> {
        sqlx::query_as(
            "SELECT resource_token, team_id, actor, action, via, request_id, at
             FROM credential_events WHERE resource_token = $1 ORDER BY at DESC, id DESC LIMIT $2",
        )
        .bind(resource_token)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
    }
}

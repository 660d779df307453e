//! Stored webhook requests: a ring of the newest N per resource.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::Store;

/// One received request.
pub struct ReceivedRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    /// Header names to values, secrets already redacted.
    pub headers: Value,
    pub body: &'a [u8],
    pub received_at: DateTime<Utc>,
}

/// A request as stored.
#[derive(sqlx::FromRow)]
pub struct StoredRequest {
    pub id: i64,
    pub received_at: DateTime<Utc>,
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Value,
    pub body: Vec<u8>,
}

impl Store {
    /// Stores `request` and drops the resource's older requests beyond `keep`, in one
    /// statement. Returns the new request's id, or none when the resource is no longer live
    /// (a slow delivery that finished after a delete stores nothing).
    pub async fn store_webhook_request(
        &self,
        resource: Uuid,
        request: &ReceivedRequest<'_>,
        keep: i64,
    ) -> sqlx::Result<Option<i64>> {
        // The DELETE sees the table as it was before the INSERT: keeping the newest
        // `keep - 1` old rows leaves `keep` with the new one.
        sqlx::query_scalar(
            "WITH inserted AS (
                 INSERT INTO webhook_requests
                     (resource_id, received_at, method, path, query, headers, body)
                 SELECT $1, $2, $3, $4, $5, $6, $7
                  WHERE EXISTS (SELECT 1 FROM resources
                                 WHERE id = $1 AND status IN ('active', 'suspended'))
                 RETURNING id
             ), trimmed AS (
                 DELETE FROM webhook_requests
                  WHERE resource_id = $1
                    AND id NOT IN (SELECT id FROM webhook_requests WHERE resource_id = $1
                                    ORDER BY id DESC LIMIT $8)
             )
             SELECT id FROM inserted",
        )
        .bind(resource)
        .bind(request.received_at)
        .bind(request.method)
        .bind(request.path)
        .bind(request.query)
        .bind(&request.headers)
        .bind(request.body)
        .bind((keep - 1).max(0))
        .fetch_optional(&self.pool)
        .await
    }

    /// Gives a webhook resource its receive id.
    pub async fn add_webhook_receiver(&self, resource: Uuid, receive_id: Uuid) -> sqlx::Result<()> {
        sqlx::query("INSERT INTO webhook_receivers (receive_id, resource_id) VALUES ($1, $2)")
            .bind(receive_id)
            .bind(resource)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The resource's stored requests, newest first, older than `before` when given.
    pub async fn webhook_requests(
        &self,
        resource: Uuid,
        limit: i64,
        before: Option<i64>,
    ) -> sqlx::Result<Vec<StoredRequest>> {
        sqlx::query_as(
            "SELECT id, received_at, method, path, query, headers, body FROM webhook_requests
              WHERE resource_id = $1 AND ($3::bigint IS NULL OR id < $3)
              ORDER BY id DESC LIMIT $2",
        )
        .bind(resource)
        .bind(limit)
        .bind(before)
        .fetch_all(&self.pool)
        .await
    }

    pub async fn delete_webhook_requests(&self, resource: Uuid) -> sqlx::Result<()> {
        sqlx::query("DELETE FROM webhook_requests WHERE resource_id = $1")
            .bind(resource)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

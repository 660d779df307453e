//! Stored webhook requests: a ring of the newest N per resource.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::Store;

/// One received request.
pub struct ReceivedRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    /// Header names to values, secrets already redacted.
    pub headers: Value,
    pub body: Vec<u8>,
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
    /// Stores a batch of `(resource, keep, request)` deliveries and trims each touched ring
    /// to its newest `keep`, in one statement (so no reader ever sees a ring longer than
    /// `keep`). Answers, in order, each delivery's id, or none when its resource is no longer
    /// live (a slow delivery that finished after a delete stores nothing). A delivery that its
    /// own batch already pushes out of the ring gets an id but is never written.
    pub async fn store_webhook_requests(
        &self,
        deliveries: &[(Uuid, i64, ReceivedRequest)],
    ) -> sqlx::Result<Vec<Option<i64>>> {
        let column = |f: fn(&ReceivedRequest) -> String| -> Vec<String> {
            deliveries.iter().map(|d| f(&d.2)).collect()
        };
        let resources: Vec<Uuid> = deliveries.iter().map(|d| d.0).collect();
        let keeps: Vec<i64> = deliveries.iter().map(|d| d.1.max(0)).collect();
        let received: Vec<DateTime<Utc>> = deliveries.iter().map(|d| d.2.received_at).collect();
        let headers: Vec<&Value> = deliveries.iter().map(|d| &d.2.headers).collect();
        let bodies: Vec<&[u8]> = deliveries.iter().map(|d| d.2.body.as_slice()).collect();
        // Ids are drawn in arrival order (`n`) before anything else, so each answer maps back
        // to its delivery and newer deliveries have larger ids. The DELETE sees the rings as
        // they were before this statement: it keeps the newest `keep - new` old rows.
        let stored: Vec<(i64, i64)> = sqlx::query_as(
            "WITH incoming AS MATERIALIZED (
                 SELECT s.*,
                        row_number() OVER (PARTITION BY s.resource_id ORDER BY s.id DESC) AS newer,
                        EXISTS (SELECT 1 FROM resources r
                                 WHERE r.id = s.resource_id
                                   AND r.status IN ('active', 'suspended')) AS live
                   FROM (SELECT i.*, nextval('webhook_requests_id_seq') AS id
                           FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::text[],
                                       $5::text[], $6::jsonb[], $7::bytea[], $8::int8[])
                                WITH ORDINALITY AS i(resource_id, received_at, method, path,
                                                     query, headers, body, keep, n)
                          ORDER BY i.n) s
             ), inserted AS (
                 INSERT INTO webhook_requests
                     (id, resource_id, received_at, method, path, query, headers, body)
                 SELECT id, resource_id, received_at, method, path, query, headers, body
                   FROM incoming
                  WHERE live AND newer <= keep
             ), trimmed AS (
                 DELETE FROM webhook_requests w
                  USING (SELECT ring.resource_id,
                                (SELECT r.id FROM webhook_requests r
                                  WHERE r.resource_id = ring.resource_id
                                  ORDER BY r.id DESC OFFSET ring.old_kept LIMIT 1) AS cut
                           FROM (SELECT resource_id, greatest(max(keep) - count(*), 0) AS old_kept
                                   FROM incoming WHERE live GROUP BY resource_id) ring) t
                  WHERE w.resource_id = t.resource_id AND w.id <= t.cut
             )
             SELECT n, id FROM incoming WHERE live",
        )
        .bind(&resources)
        .bind(&received)
        .bind(column(|r| r.method.clone()))
        .bind(column(|r| r.path.clone()))
        .bind(column(|r| r.query.clone()))
        .bind(&headers)
        .bind(&bodies)
        .bind(&keeps)
        .fetch_all(&self.pool)
        .await?;
        let mut ids = vec![None; deliveries.len()];
        for (n, id) in stored {
            if let Some(slot) = usize::try_from(n - 1).ok().and_then(|i| ids.get_mut(i)) {
                *slot = Some(id);
            }
        }
        Ok(ids)
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

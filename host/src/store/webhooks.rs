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
    /// Stores a batch of `(resource, request)` deliveries in one statement. Answers, in
    /// order, each delivery's new id, or none when its resource is no longer live (a slow
    /// delivery that finished after a delete stores nothing).
    pub async fn store_webhook_requests(
        &self,
        deliveries: &[(Uuid, ReceivedRequest)],
    ) -> sqlx::Result<Vec<Option<i64>>> {
        let column = |f: fn(&ReceivedRequest) -> String| -> Vec<String> {
            deliveries.iter().map(|d| f(&d.1)).collect()
        };
        let resources: Vec<Uuid> = deliveries.iter().map(|d| d.0).collect();
        let received: Vec<DateTime<Utc>> = deliveries.iter().map(|d| d.1.received_at).collect();
        let headers: Vec<&Value> = deliveries.iter().map(|d| &d.1.headers).collect();
        let bodies: Vec<&[u8]> = deliveries.iter().map(|d| d.1.body.as_slice()).collect();
        // Ids are drawn before the insert so each answer maps back to its delivery by
        // position (`n`), whatever order the insert happens in.
        let stored: Vec<(i64, i64)> = sqlx::query_as(
            "WITH incoming AS MATERIALIZED (
                 SELECT i.*, nextval('webhook_requests_id_seq') AS id
                   FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::text[],
                               $5::text[], $6::jsonb[], $7::bytea[])
                        WITH ORDINALITY AS i(resource_id, received_at, method, path, query,
                                             headers, body, n)
             ), inserted AS (
                 INSERT INTO webhook_requests
                     (id, resource_id, received_at, method, path, query, headers, body)
                 SELECT id, resource_id, received_at, method, path, query, headers, body
                   FROM incoming
                  WHERE EXISTS (SELECT 1 FROM resources r
                                 WHERE r.id = incoming.resource_id
                                   AND r.status IN ('active', 'suspended'))
                 RETURNING id
             )
             SELECT incoming.n, incoming.id FROM incoming JOIN inserted USING (id)",
        )
        .bind(&resources)
        .bind(&received)
        .bind(column(|r| r.method.clone()))
        .bind(column(|r| r.path.clone()))
        .bind(column(|r| r.query.clone()))
        .bind(&headers)
        .bind(&bodies)
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

    /// Trims each of `rings` (resource, keep) to its newest `keep` requests. Runs after the
    /// insert, so it sees the new rows: a batch larger than a ring still leaves exactly the
    /// newest `keep`.
    pub async fn trim_webhook_requests(&self, rings: &[(Uuid, i64)]) -> sqlx::Result<()> {
        let resources: Vec<Uuid> = rings.iter().map(|r| r.0).collect();
        let keeps: Vec<i64> = rings.iter().map(|r| r.1).collect();
        sqlx::query(
            "DELETE FROM webhook_requests w
              USING (SELECT id FROM (
                         SELECT r.id, k.keep,
                                row_number() OVER (PARTITION BY r.resource_id ORDER BY r.id DESC) AS rank
                           FROM webhook_requests r
                           JOIN unnest($1::uuid[], $2::int8[]) AS k(resource_id, keep)
                                USING (resource_id)
                     ) ranked WHERE rank > keep) doomed
              WHERE w.id = doomed.id",
        )
        .bind(&resources)
        .bind(&keeps)
        .execute(&self.pool)
        .await?;
        Ok(())
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

//! The meter's measurements over time, kept bounded: every sample for a day, one per hour
//! for a week, nothing older. The dashboard draws them.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::Store;

/// How long every sample is kept before it is rolled up into its hour.
const RAW_FOR_HOURS: i64 = 24;
/// How long hourly rollups are kept.
const KEPT_FOR_DAYS: i64 = 7;

/// One point of a usage series: the sum over the chosen resources of each one's largest
/// sample in the bucket starting at `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct UsagePoint {
    pub at: DateTime<Utc>,
    pub storage_bytes: i64,
    pub connections: i64,
}

impl Store {
    pub async fn record_usage_sample(
        &self,
        resource_id: Uuid,
        at: DateTime<Utc>,
        storage_bytes: u64,
        connections: Option<u32>,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO usage_samples (resource_id, at, storage_bytes, connections)
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(resource_id)
        .bind(at)
        .bind(i64::try_from(storage_bytes).unwrap_or(i64::MAX))
        .bind(connections.map(|c| i32::try_from(c).unwrap_or(i32::MAX)))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Rolls samples older than a day up into hourly ones and drops what is older than a
    /// week. Idempotent: replicas may run it at once.
    pub async fn compact_usage_samples(&self, now: DateTime<Utc>) -> sqlx::Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "WITH old AS (
                DELETE FROM usage_samples WHERE NOT hourly AND at < $1 RETURNING *)
             INSERT INTO usage_samples (resource_id, at, hourly, storage_bytes, connections)
             SELECT resource_id, date_trunc('hour', at), true, max(storage_bytes), max(connections)
             FROM old GROUP BY 1, 2
             ON CONFLICT (resource_id, hourly, at) DO UPDATE
               SET storage_bytes = greatest(usage_samples.storage_bytes, excluded.storage_bytes),
                   connections = greatest(usage_samples.connections, excluded.connections)",
        )
        .bind(now - Duration::hours(RAW_FOR_HOURS))
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM usage_samples WHERE at < $1")
            .bind(now - Duration::days(KEPT_FOR_DAYS))
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    /// The usage of `resources` since `since`, in at most `points` buckets of equal width
    /// (at least a second) spanning the samples there are.
    pub async fn usage_series(
        &self,
        resources: &[Uuid],
        since: DateTime<Utc>,
        now: DateTime<Utc>,
        points: i64,
    ) -> sqlx::Result<Vec<UsagePoint>> {
        let first: Option<DateTime<Utc>> = sqlx::query_scalar(
            "SELECT min(at) FROM usage_samples WHERE resource_id = ANY($1) AND at >= $2",
        )
        .bind(resources)
        .bind(since)
        .fetch_one(&self.pool)
        .await?;
        let Some(first) = first else {
            return Ok(Vec::new());
        };
        let span = (now - first).num_seconds().max(1);
        let width = (span / points.max(1)).max(1) as f64;
        sqlx::query_as(
            "SELECT bucket AS at, sum(storage)::bigint AS storage_bytes,
                    sum(connections)::bigint AS connections
             FROM (SELECT resource_id,
                          to_timestamp(floor(extract(epoch FROM at) / $3) * $3) AS bucket,
                          max(storage_bytes) AS storage, coalesce(max(connections), 0) AS connections
                   FROM usage_samples WHERE resource_id = ANY($1) AND at >= $2
                   GROUP BY 1, 2) per_resource
             GROUP BY bucket ORDER BY bucket",
        )
        .bind(resources)
        .bind(since)
        .bind(width)
        .fetch_all(&self.pool)
        .await
    }
}

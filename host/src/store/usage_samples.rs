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
    /// Records a measurement: `report` becomes the resource's latest usage, and the figures
    /// a sample for the charts, in one statement.
    pub async fn record_measurement(
        &self,
        resource_id: Uuid,
        report: &serde_json::Value,
        at: DateTime<Utc>,
        storage_bytes: u64,
        connections: Option<u32>,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "WITH sample AS (
                INSERT INTO usage_samples (resource_id, at, storage_bytes, connections)
                VALUES ($1, $3, $4, $5) ON CONFLICT DO NOTHING)
             UPDATE resources SET usage = $2 WHERE id = $1",
        )
        .bind(resource_id)
        .bind(report)
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
        // The bucket width spreads `points` over the span from the first sample to now,
        // in whole seconds, at least one.
        sqlx::query_as(
            "WITH chosen AS (
                SELECT resource_id, at, storage_bytes, connections FROM usage_samples
                WHERE resource_id = ANY($1) AND at >= $2),
             width AS (
                SELECT greatest(floor(greatest(floor(extract(epoch FROM $3 - min(at))), 1) / $4), 1)::float8
                       AS seconds
                FROM chosen)
             SELECT bucket AS at, sum(storage)::bigint AS storage_bytes,
                    sum(connections)::bigint AS connections
             FROM (SELECT resource_id,
                          to_timestamp(floor(extract(epoch FROM at)::float8 / width.seconds) * width.seconds)
                            AS bucket,
                          max(storage_bytes) AS storage, coalesce(max(connections), 0) AS connections
                   FROM chosen, width
                   GROUP BY 1, 2) per_resource
             GROUP BY bucket ORDER BY bucket",
        )
        .bind(resources)
        .bind(since)
        .bind(now)
        .bind(points.max(1))
        .fetch_all(&self.pool)
        .await
    }
}

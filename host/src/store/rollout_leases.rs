//! Which replica runs each rollout. The replica that starts a rollout leases it and renews
//! the lease while it works; when a replica dies its leases lapse and any other replica
//! takes the rollout over, so no deploy stays `building` because a process went away.
//! Lease times are the database's clock, shared by every replica.

use uuid::Uuid;

use super::Store;

/// How long a lease lasts unless renewed, in seconds.
pub const LEASE_SECS: f64 = 30.0;

/// A rollout taken over from a replica that stopped renewing its lease.
#[derive(Debug, sqlx::FromRow)]
pub struct Orphan {
    pub resource_id: Uuid,
    pub generation: i32,
    /// How many times the rollout has been started, this one included.
    pub attempts: i32,
}

impl Store {
    /// Leases the rollout of `generation` to `owner`, unless it has ended, was superseded
    /// or another replica holds a live lease on it.
    pub async fn lease_rollout(
        &self,
        resource_id: Uuid,
        generation: i32,
        owner: Uuid,
    ) -> sqlx::Result<bool> {
        let leased = sqlx::query(
            "UPDATE deployments
                SET rollout_lease_owner = $3, rollout_attempts = rollout_attempts + 1,
                    rollout_lease_until = now() + make_interval(secs => $4)
              WHERE resource_id = $1 AND generation = $2
                AND status IN ('building', 'deploying')
                AND (rollout_lease_owner IS NULL OR rollout_lease_owner = $3
                     OR rollout_lease_until IS NULL OR rollout_lease_until < now())",
        )
        .bind(resource_id)
        .bind(generation)
        .bind(owner)
        .bind(LEASE_SECS)
        .execute(&self.pool)
        .await?;
        Ok(leased.rows_affected() == 1)
    }

    /// Extends `owner`'s lease; false once the rollout ended, was superseded or taken over.
    pub async fn renew_rollout_lease(
        &self,
        resource_id: Uuid,
        generation: i32,
        owner: Uuid,
    ) -> sqlx::Result<bool> {
        let renewed = sqlx::query(
            "UPDATE deployments SET rollout_lease_until = now() + make_interval(secs => $4)
              WHERE resource_id = $1 AND generation = $2 AND rollout_lease_owner = $3
                AND status IN ('building', 'deploying')",
        )
        .bind(resource_id)
        .bind(generation)
        .bind(owner)
        .bind(LEASE_SECS)
        .execute(&self.pool)
        .await?;
        Ok(renewed.rows_affected() == 1)
    }

    /// Leases to `owner` one unfinished rollout whose lease has lapsed, if any. Replicas
    /// asking at once each get a different one.
    pub async fn take_orphaned_rollout(&self, owner: Uuid) -> sqlx::Result<Option<Orphan>> {
        sqlx::query_as(
            "UPDATE deployments d
                SET rollout_lease_owner = $1, rollout_attempts = d.rollout_attempts + 1,
                    rollout_lease_until = now() + make_interval(secs => $2)
               FROM (SELECT resource_id FROM deployments
                      WHERE status IN ('building', 'deploying')
                        AND (rollout_lease_until IS NULL OR rollout_lease_until < now())
                      ORDER BY updated_at
                      LIMIT 1
                      FOR UPDATE SKIP LOCKED) orphan
              WHERE d.resource_id = orphan.resource_id
          RETURNING d.resource_id, d.generation, d.rollout_attempts AS attempts",
        )
        .bind(owner)
        .bind(LEASE_SECS)
        .fetch_optional(&self.pool)
        .await
    }
}

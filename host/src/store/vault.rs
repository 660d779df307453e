//! A team's vault: versioned, sealed secrets by environment and name, and the trail of
//! every read and write.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Store;

/// Where a secret lives.
#[derive(Debug, Clone, Copy)]
pub struct VaultKey<'a> {
    pub team_id: Uuid,
    pub env: &'a str,
    pub key: &'a str,
}

/// One read or write of a secret.
pub struct VaultEvent<'a> {
    pub entry: VaultKey<'a>,
    pub version: Option<i32>,
    /// The account's email, or `rollout` when an app's env was resolved.
    pub actor: &'a str,
    /// `write`, `read`, `delete` or `resolve`.
    pub action: &'a str,
    pub request_id: &'a str,
    pub at: DateTime<Utc>,
}

/// Why a write did not happen.
#[derive(Debug, PartialEq, Eq)]
pub enum VaultWrite {
    /// Stored as this version.
    Stored(i32),
    /// A new name would take the team past this many entries.
    Full(i64),
    /// A rotation of a name that holds nothing.
    Missing,
}

impl Store {
    /// Stores `sealed` as the next version of `entry`. A new name counts against
    /// `max_entries` (names across the team's envs); `existing_only` refuses new names.
    pub async fn write_vault(
        &self,
        entry: VaultKey<'_>,
        sealed: &[u8],
        max_entries: i64,
        existing_only: bool,
        now: DateTime<Utc>,
    ) -> sqlx::Result<VaultWrite> {
        let mut tx = self.pool.begin().await?;
        // One writer per team at a time, so two new names cannot both take the last place.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 7))")
            .bind(entry.team_id)
            .execute(&mut *tx)
            .await?;
        let latest: Option<i32> = sqlx::query_scalar(
            "SELECT max(version) FROM vault_entries WHERE team_id = $1 AND env = $2 AND key = $3",
        )
        .bind(entry.team_id)
        .bind(entry.env)
        .bind(entry.key)
        .fetch_one(&mut *tx)
        .await?;
        if latest.is_none() {
            if existing_only {
                return Ok(VaultWrite::Missing);
            }
            let names: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM (SELECT DISTINCT env, key FROM vault_entries
                                        WHERE team_id = $1) names",
            )
            .bind(entry.team_id)
            .fetch_one(&mut *tx)
            .await?;
            if names >= max_entries {
                return Ok(VaultWrite::Full(max_entries));
            }
        }
        let version = latest.unwrap_or(0) + 1;
        sqlx::query(
            "INSERT INTO vault_entries (team_id, env, key, version, sealed, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(entry.team_id)
        .bind(entry.env)
        .bind(entry.key)
        .bind(version)
        .bind(sealed)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(VaultWrite::Stored(version))
    }

    /// A version of `entry` (the newest when `None`): its number and sealed value.
    pub async fn read_vault(
        &self,
        entry: VaultKey<'_>,
        version: Option<i32>,
    ) -> sqlx::Result<Option<(i32, Vec<u8>)>> {
        sqlx::query_as(
            "SELECT version, sealed FROM vault_entries
             WHERE team_id = $1 AND env = $2 AND key = $3 AND ($4::int IS NULL OR version = $4)
             ORDER BY version DESC LIMIT 1",
        )
        .bind(entry.team_id)
        .bind(entry.env)
        .bind(entry.key)
        .bind(version)
        .fetch_optional(&self.pool)
        .await
    }

    /// The names in one env of the team's vault, sorted.
    pub async fn vault_names(&self, team_id: Uuid, env: &str) -> sqlx::Result<Vec<String>> {
        sqlx::query_scalar(
            "SELECT DISTINCT key FROM vault_entries WHERE team_id = $1 AND env = $2 ORDER BY key",
        )
        .bind(team_id)
        .bind(env)
        .fetch_all(&self.pool)
        .await
    }

    /// The envs of the team's vault that hold a name, with how many each holds.
    pub async fn vault_envs(&self, team_id: Uuid) -> sqlx::Result<Vec<(String, i64)>> {
        sqlx::query_as(
            "SELECT env, count(DISTINCT key) FROM vault_entries WHERE team_id = $1
             GROUP BY env ORDER BY env",
        )
        .bind(team_id)
        .fetch_all(&self.pool)
        .await
    }

    /// Removes every version of `entry`; whether there was one.
    pub async fn delete_vault(&self, entry: VaultKey<'_>) -> sqlx::Result<bool> {
        let done =
            sqlx::query("DELETE FROM vault_entries WHERE team_id = $1 AND env = $2 AND key = $3")
                .bind(entry.team_id)
                .bind(entry.env)
                .bind(entry.key)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn record_vault_event(&self, event: &VaultEvent<'_>) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO vault_events (team_id, env, key, version, actor, action, request_id, at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(event.entry.team_id)
        .bind(event.entry.env)
        .bind(event.entry.key)
        .bind(event.version)
        .bind(event.actor)
        .bind(event.action)
        .bind(event.request_id)
        .bind(event.at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

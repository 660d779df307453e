//! Provider versions shared by every replica: the bytes of each version made live by
//! content hash, and which one each provider serves. A replica that swaps a provider writes
//! here and notifies [`PROVIDERS_CHANNEL`]; the others converge on it.

use chrono::{DateTime, Utc};

use super::Store;

/// The notification channel a provider change is announced on.
pub const PROVIDERS_CHANNEL: &str = "instanode_providers";

/// Which version of a provider every replica should serve.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ProviderLive {
    pub name: String,
    /// None: taken out of service.
    pub sha256: Option<String>,
    /// Grows with every change, so a replica knows which changes it has applied.
    pub changed: i64,
}

impl Store {
    /// Keeps the bytes of a provider version (once per content hash).
    pub async fn keep_provider_version(
        &self,
        sha256: &str,
        wasm: &[u8],
        source: &str,
        now: DateTime<Utc>,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO provider_versions (sha256, wasm, source, uploaded_at)
             VALUES ($1, $2, $3, $4) ON CONFLICT (sha256) DO NOTHING",
        )
        .bind(sha256)
        .bind(wasm)
        .bind(source)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records what provider `name` serves now and tells the other replicas.
    pub async fn set_provider_live(&self, name: &str, sha256: Option<&str>) -> sqlx::Result<i64> {
        let mut tx = self.pool.begin().await?;
        let changed: i64 = sqlx::query_scalar(
            "INSERT INTO provider_live (name, sha256, changed)
             VALUES ($1, $2, nextval('provider_live_changes'))
             ON CONFLICT (name) DO UPDATE
                SET sha256 = $2, changed = nextval('provider_live_changes')
             RETURNING changed",
        )
        .bind(name)
        .bind(sha256)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(PROVIDERS_CHANNEL)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(changed)
    }

    /// What every provider with a recorded change serves.
    pub async fn providers_live(&self) -> sqlx::Result<Vec<ProviderLive>> {
        sqlx::query_as("SELECT name, sha256, changed FROM provider_live")
            .fetch_all(&self.pool)
            .await
    }

    /// The bytes and original source of a kept version.
    pub async fn provider_version(&self, sha256: &str) -> sqlx::Result<Option<(Vec<u8>, String)>> {
        sqlx::query_as("SELECT wasm, source FROM provider_versions WHERE sha256 = $1")
            .bind(sha256)
            .fetch_optional(&self.pool)
            .await
    }
}

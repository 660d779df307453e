//! Private key-value state of one provider, behind the `kv` capability.

use sqlx::PgPool;

/// One provider's namespace in `provider_kv`.
#[derive(Clone)]
pub struct KvStore {
    pool: PgPool,
    provider: String,
}

impl KvStore {
    pub(super) fn new(pool: PgPool, provider: &str) -> Self {
        Self {
            pool,
            provider: provider.to_string(),
        }
    }

    pub async fn get(&self, key: &str) -> sqlx::Result<Option<Vec<u8>>> {
        sqlx::query_scalar("SELECT value FROM provider_kv WHERE provider = $1 AND key = $2")
            .bind(&self.provider)
            .bind(key)
            .fetch_optional(&self.pool)
            .await
    }

    pub async fn set(&self, key: &str, value: &[u8]) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO provider_kv (provider, key, value) VALUES ($1, $2, $3)
             ON CONFLICT (provider, key) DO UPDATE SET value = excluded.value, updated_at = now()",
        )
        .bind(&self.provider)
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn delete(&self, key: &str) -> sqlx::Result<()> {
        sqlx::query("DELETE FROM provider_kv WHERE provider = $1 AND key = $2")
            .bind(&self.provider)
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn list_keys(&self, prefix: &str, limit: u32) -> sqlx::Result<Vec<String>> {
        sqlx::query_scalar(
            "SELECT key FROM provider_kv WHERE provider = $1 AND starts_with(key, $2)
             ORDER BY key LIMIT $3",
        )
        .bind(&self.provider)
        .bind(prefix)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
    }
}

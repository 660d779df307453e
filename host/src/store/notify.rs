//! Notifications between replicas through the metadata database (`LISTEN`/`NOTIFY`).

use sqlx::postgres::PgListener;

use super::Store;

/// Announces that some app's route changed, so every replica forgets its cached routes.
pub const ROUTES_CHANNEL: &str = "instanode_routes";

impl Store {
    /// Tells every replica (this one included) that a route changed.
    pub async fn announce_route_change(&self) -> sqlx::Result<()> {
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(ROUTES_CHANNEL)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A connection listening on `channels`.
    pub async fn listen(&self, channels: &[&str]) -> sqlx::Result<PgListener> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen_all(channels.iter().copied()).await?;
        Ok(listener)
    }
}

//! The metadata store: the only module that talks to the metadata database.

mod accounts;
mod activity;
mod audit;
mod deletions;
mod deployments;
mod idempotency;
mod invitations;
mod keys;
mod kv;
mod notify;
mod provider_versions;
mod resources;
pub mod rollout_leases;
mod seal;
mod status;
mod tls;
mod usage_samples;
mod vault;
mod webhooks;

use std::time::Duration;

use anyhow::Context;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

pub use accounts::{
    Account, ApiKeyRow, BillingEventFate, CliPoll, CliSession, Member, NewKey, NewLink, UsedLink,
};
pub use activity::Activity;
pub use audit::CredentialEvent;
pub use deletions::PendingDeletion;
pub use deployments::{AppSource, DeploymentRow, NewDeployment, Outcome, StackRow};
pub use idempotency::{Claim, EntryKey};
pub use invitations::{InvitationRow, Joined, NewInvitation, OpenInvitation};
pub use keys::{HostKey, KeyRing};
pub use kv::KvStore;
pub use notify::ROUTES_CHANNEL;
pub use provider_versions::{PROVIDERS_CHANNEL, ProviderLive};
pub use resources::{DeleteStart, EndReason, EnforcementFailure, NewResource, ResourceRow};
pub use seal::Sealer;
pub use status::{DeploymentStatus, ResourceStatus};
pub use tls::{
    CertificateState, CustomDomain, DomainRefusal, DueCertificate, HeldCertificate, TLS_CHANNEL,
};
pub use usage_samples::UsagePoint;
pub use vault::{VaultEvent, VaultKey, VaultWrite};
pub use webhooks::{ReceivedRequest, StoredRequest};

/// Handle on the metadata database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: PgPool,
}

impl Store {
    /// Connects and applies pending migrations.
    pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Self> {
        let options: PgConnectOptions = url
            .parse()
            .context("metadata.url is not a PostgreSQL URL")?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options.options([("statement_timeout", "10s")]))
            .await
            .context("cannot connect to the metadata database")?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .context("cannot migrate the metadata database")?;
        close_to_public(&pool).await;
        Ok(Self { pool })
    }

    /// Round trip to the database, for readiness.
    pub async fn ping(&self) -> anyhow::Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// The host's signing keys, sealed with `sealer`.
    pub fn key_ring(&self, sealer: Sealer) -> KeyRing {
        KeyRing::new(self.pool.clone(), sealer)
    }

    /// The private key-value space of one provider.
    pub fn kv(&self, provider: &str) -> KvStore {
        KvStore::new(self.pool.clone(), provider)
    }
}

/// Whether `error` means the metadata database cannot be reached right now (down,
/// restarting, connections cut), as opposed to a query that is wrong.
pub fn unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        // Class 08: connection exception; 57P0x: the server is shutting down or starting.
        sqlx::Error::Database(e) => e
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
        _ => false,
    }
}

/// Tenants may live on the same server as the metadata: make sure no role but the host's
/// can open the metadata database. A role that cannot revoke only gets a warning, since the
/// operator may have locked it down another way.
async fn close_to_public(pool: &PgPool) {
    let revoke = sqlx::raw_sql(
        "DO $$ BEGIN
           IF has_database_privilege('public', current_database(), 'CONNECT') THEN
             EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
           END IF;
         END $$",
    );
    if let Err(e) = revoke.execute(pool).await {
        tracing::warn!(error = %e, "cannot close the metadata database to other roles; revoke CONNECT from PUBLIC yourself");
    }
}

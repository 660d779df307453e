//! What the lifecycle and deploy layers work with: the metadata store, the providers and
//! their kinds, plans, the clock, and where apps are built and reached. The HTTP side's own
//! concerns (sessions, rate limits, mail, webhook intake) stay in [`crate::app::App`],
//! which derefs to these.

use std::sync::Arc;

use crate::clock::Clock;
use crate::config::LifecycleConfig;
use crate::deploy::AppUrls;
use crate::deploy::build_slots::BuildSlots;
use crate::deploy::routes::RouteCache;
use crate::kinds::Catalog;
use crate::lifecycle::maintenance::Maintenance;
use crate::registry::Registry;
use crate::store::{Sealer, Store};
use crate::tenancy::plans::Plans;
use crate::tenancy::tokens::TokenSigner;

pub struct Services {
    pub store: Store,
    pub registry: Arc<Registry>,
    /// Every kind this host serves, through the live components and the built-in providers.
    pub kinds: Catalog,
    pub sealer: Sealer,
    /// Signs upgrade tokens and sessions.
    pub tokens: TokenSigner,
    pub plans: Plans,
    pub clock: Clock,
    pub lifecycle: LifecycleConfig,
    pub maintenance: Maintenance,
    /// The URL agents reach this host at, without a trailing slash.
    pub public_url: String,
    /// Where deployed apps are reached.
    pub apps: AppUrls,
    /// Turns to build app images.
    pub builds: BuildSlots,
    /// Serving apps' addresses, remembered briefly for the proxy.
    pub routes: RouteCache,
    /// Names this process among the replicas sharing the metadata database (rollout leases).
    pub replica: uuid::Uuid,
    /// Certificates and custom domains.
    pub tls: crate::tls::Tls,
}

impl Services {
    /// An app's route changed: this replica looks routes up again, and so does every other.
    pub async fn route_changed(&self) {
        self.routes.forget_all();
        if let Err(e) = self.store.announce_route_change().await {
            tracing::warn!(error = %e, "cannot tell the other replicas a route changed; they notice within seconds");
        }
    }
}

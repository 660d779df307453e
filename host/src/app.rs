//! The application state shared by every request.

use std::sync::Arc;

use crate::config::Config;
use crate::lifecycle::maintenance::{self, Maintenance};
use crate::registry::Registry;
use crate::store::{Sealer, Store};
use crate::tenancy::tokens::TokenSigner;

pub struct App {
    pub store: Store,
    pub registry: Registry,
    pub sealer: Sealer,
    pub tokens: TokenSigner,
    /// The URL agents reach this host at, without a trailing slash.
    pub public_url: String,
    pub fault_injection: bool,
    pub maintenance: Maintenance,
}

pub type SharedApp = Arc<App>;

impl App {
    /// Connects the store, loads every provider and starts their upkeep.
    pub async fn start(config: &Config) -> anyhow::Result<SharedApp> {
        let store = Store::connect(
            config.metadata.url.expose(),
            config.metadata.max_connections,
        )
        .await?;
        let registry = Registry::load(config, &store).await?;
        let app = Arc::new(Self {
            store,
            registry,
            sealer: Sealer::from_hex(config.secrets.seal_key.expose())?,
            tokens: TokenSigner::new(config.secrets.jwt_secret.expose().as_bytes()),
            public_url: config.public_url.trim_end_matches('/').to_string(),
            fault_injection: config.testing.fault_injection,
            maintenance: Maintenance::default(),
        });
        maintenance::spawn(app.clone());
        Ok(app)
    }
}

//! The application state shared by every request.

use std::ops::Deref;
use std::sync::Arc;

use crate::clock::Clock;
use crate::config::Config;
use crate::deploy::AppUrls;
use crate::deploy::build_slots::BuildSlots;
use crate::kinds::Catalog;
use crate::lifecycle::maintenance::{self, Maintenance};
use crate::proxy::{Proxy, Upstream};
use crate::readiness::Readiness;
use crate::registry::Registry;
use crate::schedule;
use crate::services::Services;
use crate::store::{DeploymentStatus, Sealer, Store};
use crate::tenancy::client::{ClientResolver, parse_cidrs};
use crate::tenancy::plans::Plans;
use crate::tenancy::rate_limit::{PRESIGN_PER_MINUTE, RateLimiter};
use crate::tenancy::tokens::TokenSigner;
use crate::webhook_ingest::{Receivers, WebhookIngest};

pub struct App {
    /// What lifecycle and deploy work with; `app.store` and the like read through to it.
    pub services: Arc<Services>,
    /// Where webhook deliveries queue to be stored in batches.
    pub webhook_ingest: WebhookIngest,
    /// Recently looked-up webhook receivers.
    pub webhook_receivers: Receivers,
    pub clients: ClientResolver,
    pub rate_limiter: RateLimiter,
    /// Presign requests per storage resource.
    pub presign_limiter: RateLimiter<uuid::Uuid>,
    /// Webhook deliveries per receiver (the rate follows its tier's ring size).
    pub delivery_limiter: RateLimiter<uuid::Uuid>,
    /// Webhook deliveries to all receivers together: the host's flood ceiling.
    pub delivery_ceiling: RateLimiter<()>,
    pub readiness: Readiness,
    pub fault_injection: bool,
    pub control_routes: bool,
    /// Sends claim and sign-in links, when an email relay is configured.
    pub mailer: Option<crate::mail::Mailer>,
    /// The key billing events are signed with.
    pub billing_secret: Option<String>,
    /// The operator API's bearer token; the API is off without one.
    pub admin_token: Option<String>,
}

impl Deref for App {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.services
    }
}

pub type SharedApp = Arc<App>;

impl App {
    /// Connects the store, loads plans and every provider, and starts the background work.
    pub async fn start(config: &Config) -> anyhow::Result<SharedApp> {
        let plans = Plans::load(config.plans.as_deref())?;
        let store = Store::connect(
            config.metadata.url.expose(),
            config.metadata.max_connections,
        )
        .await?;
        let sealer = Sealer::from_hex(config.secrets.seal_key.expose())?;
        let keys = Arc::new(store.key_ring(sealer.clone()));
        let registry = Arc::new(Registry::load(config, &store, keys).await?);
        let public_url = config.public_url.trim_end_matches('/').to_string();
        let webhooks = crate::webhooks::Webhooks::new(store.clone(), public_url.clone());
        let kinds = Catalog::new(registry.clone(), vec![Arc::new(webhooks)]);
        let jwt_secret = config.secrets.jwt_secret.expose().as_bytes();
        let services = Arc::new(Services {
            store: store.clone(),
            registry,
            kinds,
            sealer,
            tokens: TokenSigner::new(jwt_secret),
            plans,
            clock: Clock::default(),
            lifecycle: config.lifecycle,
            maintenance: Maintenance::default(),
            public_url,
            apps: AppUrls::parse(&config.apps_url())?,
            builds: BuildSlots::new(config.apps.builds_per_owner, config.apps.concurrent_builds),
            routes: Default::default(),
            replica: uuid::Uuid::new_v4(),
            tls: crate::tls::Tls::new(config)?,
        });
        let app = Arc::new(Self {
            services: services.clone(),
            webhook_ingest: WebhookIngest::spawn(store),
            webhook_receivers: Receivers::default(),
            clients: ClientResolver::new(parse_cidrs(&config.trusted_proxies.items())?, jwt_secret),
            rate_limiter: RateLimiter::new(config.rate_limit_per_minute),
            presign_limiter: RateLimiter::new(PRESIGN_PER_MINUTE),
            delivery_limiter: RateLimiter::new(0),
            delivery_ceiling: RateLimiter::new(config.webhook_deliveries_per_minute),
            readiness: Readiness::default(),
            fault_injection: config.testing.fault_injection,
            control_routes: config.testing.control_routes,
            mailer: config
                .email
                .as_ref()
                .map(crate::mail::Mailer::new)
                .transpose()?,
            billing_secret: config
                .billing
                .webhook_secret
                .as_ref()
                .map(|s| s.expose().to_string()),
            admin_token: config
                .admin_token
                .as_ref()
                .map(|s| s.expose().to_string())
                .filter(|t| !t.is_empty()),
        });
        maintenance::spawn(services.clone());
        crate::provider_watch::spawn(
            services.clone(),
            std::time::Duration::from_millis(config.providers_poll_ms),
        )
        .await;
        crate::replication::spawn(services.clone());
        // Loaded before any listener exists, so no handshake finds the store still empty.
        services.tls.reload(&services).await;
        crate::tls::spawn(services.clone());
        schedule::spawn(services);
        Ok(app)
    }
}

/// The reverse proxy for deployed apps: a healthy app (or one rolling out while its last
/// version still serves) gets its traffic; anything else gets a page saying why not.
pub fn app_proxy(app: &SharedApp) -> Arc<Proxy> {
    let lookup = app.clone();
    let resolve: crate::proxy::Resolve = Arc::new(move |slug: String| {
        let app = lookup.clone();
        Box::pin(async move {
            if let Some(upstream) = app.routes.get(&slug) {
                return upstream;
            }
            match app.store.deployment_by_slug(&slug).await {
                Ok(Some(row)) if row.status != DeploymentStatus::Stopped => {
                    let endpoints = match row.upstream.as_deref() {
                        Some(upstream) => crate::deploy::routes::endpoints(&app, upstream).await,
                        None => None,
                    };
                    let Some(addresses) = endpoints else {
                        return Upstream::Unavailable {
                            status: row.status.as_str().into(),
                        };
                    };
                    let upstream = match &row.allowed_ips {
                        None => Upstream::Ready(addresses),
                        // Stored checked; an entry that no longer parses allows no one.
                        Some(allowed) => Upstream::Private {
                            addresses,
                            allowed: allowed.iter().filter_map(|n| n.parse().ok()).collect(),
                        },
                    };
                    // A service with no task running yet is asked again next time.
                    if !matches!(&upstream, Upstream::Ready(a) | Upstream::Private { addresses: a, .. } if a.is_empty())
                    {
                        app.routes.put(slug, upstream.clone());
                    }
                    upstream
                }
                Ok(Some(row)) => Upstream::Unavailable {
                    status: row.status.as_str().into(),
                },
                Ok(None) => Upstream::Unknown,
                Err(e) => {
                    tracing::warn!(error = %e, "app lookup failed");
                    Upstream::Unavailable {
                        status: "unavailable".into(),
                    }
                }
            }
        })
    });
    let clients = app.clone();
    let client_ip: crate::proxy::ClientIp =
        Arc::new(move |peer: std::net::IpAddr, forwarded: Option<&str>| {
            clients.clients.resolve(peer, forwarded).ip
        });
    let mut proxy = Proxy::new(app.apps.domain(), resolve).with_client_ip(client_ip);
    // Without HTTPS there are no custom domains or redirects: API requests skip the lookups.
    if app.tls.serves_https() {
        let domains = app.clone();
        let certified = app.clone();
        proxy = proxy
            .with_custom_domains(Arc::new(move |host: &str| {
                domains.tls.domains.slug_for(host)
            }))
            .with_https_redirects(Arc::new(move |host: &str| certified.tls.https_origin(host)));
    }
    if app.tls.answers_acme() {
        proxy = proxy.with_acme_answers();
    }
    Arc::new(proxy)
}

/// The NATS server settings that make it trust this host's keys (`instanode
/// nats-server-config`).
pub async fn nats_server_trust(config: &Config) -> anyhow::Result<String> {
    let store = Store::connect(
        config.metadata.url.expose(),
        config.metadata.max_connections,
    )
    .await?;
    let keys = store.key_ring(Sealer::from_hex(config.secrets.seal_key.expose())?);
    crate::caps::server_trust_config(&keys).await
}

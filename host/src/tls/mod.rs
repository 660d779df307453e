//! HTTPS at the edge: the certificates served (by SNI), where they come from (an ACME CA, or
//! the operator's files), custom domains, and the background work that keeps them current.
//!
//! Every replica runs the same loop. The metadata database says which names need a
//! certificate and leases each due one to a single replica; the certificate lands there,
//! sealed, and every replica loads it.

pub mod acme;
pub mod certs;
pub mod domains;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, TimeDelta, Utc};
use rustls::crypto::CryptoProvider;
use tokio_rustls::TlsAcceptor;

use crate::config::{Config, TlsConfig};
use crate::services::Services;
use acme::{Acme, IssueError, Proof};
use certs::{CertStore, KEY_AAD};
use domains::{DomainMap, Prover};

/// How long a replica holds a due certificate while it asks the CA.
const ISSUE_LEASE_SECS: f64 = 300.0;
/// How long one issue may take, CA calls and validation included.
const ISSUE_TIMEOUT: Duration = Duration::from_secs(240);
/// How often wanted names, pending domains and due certificates are looked at.
const TICK: Duration = Duration::from_secs(1);
/// How often the wanted names are worked out again.
const RECONCILE_EVERY: u32 = 10;
/// How long after a failed check a pending domain's TXT record is looked up again.
const RECHECK: TimeDelta = TimeDelta::seconds(5);
/// The first wait after a failed attempt; it doubles with each further failure.
const FIRST_RETRY: TimeDelta = TimeDelta::seconds(30);
/// The longest wait between attempts, and the least after the CA's rate limit.
const LONGEST_RETRY: TimeDelta = TimeDelta::hours(1);

pub struct Tls {
    /// Whether HTTPS is served at all.
    enabled: bool,
    pub certs: Arc<CertStore>,
    pub domains: DomainMap,
    acme: Option<Acme>,
    prover: Option<Prover>,
    /// The public_url's host, when it should get a certificate of its own.
    api_name: Option<String>,
    /// The port HTTPS URLs name (redirects leave it out when it is 443).
    https_port: u16,
    keep_http: bool,
    renew_when_left: f64,
}

impl Tls {
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let tls = &config.tls;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let fallback = operator_certificate(tls, &provider)?.map(Arc::new);
        let enabled = tls.listen.is_some();
        let api_name = tls
            .acme
            .as_ref()
            .filter(|acme| acme.api_certificate)
            .and_then(|_| url::Url::parse(&config.public_url).ok())
            .and_then(|url| url.host_str().map(str::to_ascii_lowercase));
        Ok(Self {
            enabled,
            certs: Arc::new(CertStore::new(provider, fallback)),
            domains: DomainMap::default(),
            acme: tls.acme.as_ref().filter(|_| enabled).map(Acme::new),
            prover: enabled
                .then(|| Prover::new(tls.dns_resolver))
                .transpose()
                .context("cannot set up the DNS resolver for custom domains")?,
            api_name,
            https_port: tls.listen.map_or(443, |listen| listen.port()),
            keep_http: tls.keep_http,
            renew_when_left: tls
                .acme
                .as_ref()
                .map_or(1.0 / 3.0, |acme| acme.renew_when_left.clamp(0.01, 0.99)),
        })
    }

    /// Whether `[tls] listen` is set.
    pub fn serves_https(&self) -> bool {
        self.enabled
    }

    /// Whether certificates come from an ACME CA, whose HTTP-01 challenges this host answers.
    pub fn answers_acme(&self) -> bool {
        self.acme.is_some()
    }

    /// Whether custom domains can be added (HTTPS on, with a CA to certify them).
    pub fn custom_domains_available(&self) -> bool {
        self.acme.is_some() && self.prover.is_some()
    }

    /// The handshake side of the HTTPS listener.
    pub fn acceptor(&self) -> anyhow::Result<TlsAcceptor> {
        let mut server = rustls::ServerConfig::builder_with_provider(self.certs.provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(self.certs.clone());
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(server)))
    }

    /// Where a plain-HTTP request for `host` should go instead: `https://<host>[:port]` when a
    /// certificate for it is served and the operator did not keep plain HTTP.
    pub fn https_origin(&self, host: &str) -> Option<String> {
        if !self.enabled || self.keep_http {
            return None;
        }
        let name = domains::name_of(host);
        if !self.certs.serves(name) {
            return None;
        }
        Some(match self.https_port {
            443 => format!("https://{name}"),
            port => format!("https://{name}:{port}"),
        })
    }

    /// Loads the certificates and proven domains from the metadata database.
    pub async fn reload(&self, services: &Services) {
        if !self.enabled {
            return;
        }
        if let Err(e) = self.certs.reload(&services.store, &services.sealer).await {
            tracing::warn!(error = %format!("{e:#}"), "cannot load certificates");
        }
        if let Err(e) = self.domains.reload(&services.store).await {
            tracing::warn!(error = %e, "cannot load custom domains");
        }
    }

    /// Checks the TXT proof of app `resource_id`'s request for `domain` now; true if the app
    /// got the domain.
    pub async fn check_proof(
        &self,
        services: &Services,
        domain: &str,
        resource_id: uuid::Uuid,
        token: &str,
    ) -> bool {
        let Some(prover) = &self.prover else {
            return false;
        };
        let proven = prover.proves(domain, token).await;
        let got = match services
            .store
            .domain_checked(domain, resource_id, proven)
            .await
        {
            Ok(got) => got,
            Err(e) => {
                tracing::warn!(%domain, error = %e, "cannot record a domain check");
                return false;
            }
        };
        if got {
            tracing::info!(%domain, %resource_id, "custom domain proven");
            self.changed(services).await;
        }
        got
    }

    /// Something this replica changed: load it here and tell the others.
    pub async fn changed(&self, services: &Services) {
        self.reload(services).await;
        if let Err(e) = services.store.announce_tls_change().await {
            tracing::warn!(error = %e, "cannot tell the other replicas about a certificate change");
        }
    }
}

/// The operator's own certificate, if `[tls] certificate` and `private_key` name one.
fn operator_certificate(
    tls: &TlsConfig,
    provider: &CryptoProvider,
) -> anyhow::Result<Option<rustls::sign::CertifiedKey>> {
    let (Some(chain), Some(key)) = (&tls.certificate, &tls.private_key) else {
        anyhow::ensure!(
            tls.certificate.is_none() && tls.private_key.is_none(),
            "[tls] certificate and private_key go together"
        );
        return Ok(None);
    };
    let chain_pem =
        std::fs::read(chain).with_context(|| format!("cannot read {}", chain.display()))?;
    let key_pem = std::fs::read(key).with_context(|| format!("cannot read {}", key.display()))?;
    certs::certified_key(provider, &chain_pem, &key_pem)
        .with_context(|| format!("{} with {}", chain.display(), key.display()))
        .map(Some)
}

/// Starts the background work: every replica keeps its certificates loaded, and works on
/// whatever the database says is due.
pub fn spawn(services: Arc<Services>) {
    if !services.tls.enabled {
        return;
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ticks: u32 = 0;
        loop {
            tick.tick().await;
            if services.tls.acme.is_none() {
                continue;
            }
            if ticks.is_multiple_of(RECONCILE_EVERY)
                && let Err(e) = want_names(&services).await
            {
                tracing::warn!(error = %e, "cannot work out which names need certificates");
            }
            ticks = ticks.wrapping_add(1);
            verify_pending_domains(&services).await;
            issue_due(&services).await;
        }
    });
}

/// Records which names need certificates: the apps domain (one wildcard with a DNS hook,
/// else one per live app), and the API's own name if asked for. Custom domains are added as
/// they are proven.
async fn want_names(services: &Services) -> sqlx::Result<()> {
    let tls = &services.tls;
    let Some(acme) = &tls.acme else {
        return Ok(());
    };
    let store = &services.store;
    let apps = services.apps.domain();
    let mut added = false;
    if store.release_domains_of_ended_apps().await? > 0 {
        tls.changed(services).await;
    }
    if acme.has_dns_hook() {
        added |= store
            .want_certificate(&format!("*.{apps}"), Proof::Dns01.as_str())
            .await?;
    } else {
        let live: HashSet<String> = store
            .live_app_slugs()
            .await?
            .into_iter()
            .map(|slug| format!("{slug}.{apps}"))
            .collect();
        let known: HashSet<String> = store.certificate_names().await?.into_iter().collect();
        for name in live.difference(&known) {
            added |= store.want_certificate(name, Proof::Http01.as_str()).await?;
        }
        // An ended app's name is no longer served or renewed.
        for name in &known {
            let per_app = name
                .strip_suffix(&format!(".{apps}"))
                .is_some_and(|label| !label.contains('.') && label != "*");
            if per_app && !live.contains(name) {
                store.forget_certificate(name).await?;
            }
        }
    }
    if let Some(api) = &tls.api_name {
        let proof = if acme.has_dns_hook() {
            Proof::Dns01
        } else {
            Proof::Http01
        };
        added |= store.want_certificate(api, proof.as_str()).await?;
    }
    if added {
        tracing::info!("new names need certificates");
    }
    Ok(())
}

/// Looks up the TXT proof of domains still pending.
async fn verify_pending_domains(services: &Services) {
    let pending = match services.store.domains_to_verify(Utc::now() - RECHECK).await {
        Ok(pending) => pending,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list pending domains");
            return;
        }
    };
    for domain in pending {
        services
            .tls
            .check_proof(
                services,
                &domain.domain,
                domain.resource_id,
                &domain.verification_token,
            )
            .await;
    }
}

/// Works through the certificates due for issue or renewal, one at a time.
async fn issue_due(services: &Services) {
    let Some(acme) = &services.tls.acme else {
        return;
    };
    loop {
        let due = match services.store.take_due_certificate(ISSUE_LEASE_SECS).await {
            Ok(Some(due)) => due,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "cannot look for due certificates");
                return;
            }
        };
        let Some(proof) = Proof::parse(&due.challenge) else {
            tracing::warn!(name = %due.name, challenge = %due.challenge, "unknown challenge type");
            continue;
        };
        let began = std::time::Instant::now();
        // The lease lapses after ISSUE_LEASE_SECS; give up before, so one hung CA call
        // cannot stall this replica's renewals and domain checks.
        let outcome = tokio::time::timeout(
            ISSUE_TIMEOUT,
            acme.issue(&due.name, proof, &services.store, &services.sealer),
        )
        .await
        .unwrap_or_else(|_| {
            Err(IssueError {
                message: format!("the CA did not finish within {ISSUE_TIMEOUT:?}"),
                rate_limited: false,
            })
        });
        let recorded = match outcome {
            Ok(issued) => {
                tracing::info!(name = %due.name, elapsed_ms = began.elapsed().as_millis() as u64, renewal = due.not_after.is_some(), "certificate issued");
                store_issued(services, &due.name, &issued).await
            }
            Err(error) => {
                tracing::warn!(name = %due.name, error = %error.message, "certificate not issued");
                let retry_at = Utc::now() + retry_after(due.attempts, &error);
                services
                    .store
                    .certificate_failed(&due.name, &error.message, retry_at)
                    .await
                    .map_err(Into::into)
            }
        };
        if let Err(e) = recorded {
            tracing::warn!(name = %due.name, error = %format!("{e:#}"), "cannot record a certificate");
        }
        services.tls.changed(services).await;
    }
}

async fn store_issued(
    services: &Services,
    name: &str,
    issued: &acme::Issued,
) -> anyhow::Result<()> {
    let (not_before, not_after) = validity(&issued.chain_pem)?;
    let lifetime = not_after - not_before;
    let left = TimeDelta::milliseconds(
        (lifetime.num_milliseconds() as f64 * services.tls.renew_when_left) as i64,
    );
    let sealed = services.sealer.seal(issued.key_pem.as_bytes(), KEY_AAD)?;
    services
        .store
        .certificate_issued(
            name,
            &issued.chain_pem,
            &sealed,
            not_before,
            not_after,
            not_after - left,
        )
        .await?;
    Ok(())
}

/// When the leaf certificate of a PEM chain starts and ends.
fn validity(chain_pem: &str) -> anyhow::Result<(DateTime<Utc>, DateTime<Utc>)> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(chain_pem.as_bytes())
        .map_err(|e| anyhow::anyhow!("the certificate is not PEM: {e}"))?;
    let leaf = pem
        .parse_x509()
        .map_err(|e| anyhow::anyhow!("the certificate does not parse: {e}"))?;
    let at = |time: x509_parser::time::ASN1Time| {
        DateTime::from_timestamp(time.timestamp(), 0).context("a validity date out of range")
    };
    Ok((
        at(leaf.validity().not_before)?,
        at(leaf.validity().not_after)?,
    ))
}

/// How long to wait after failed attempt number `attempts + 1`.
fn retry_after(attempts: i32, error: &IssueError) -> TimeDelta {
    if error.rate_limited {
        return LONGEST_RETRY;
    }
    let doubled = FIRST_RETRY * 2_i32.saturating_pow(attempts.clamp(0, 16) as u32);
    doubled.min(LONGEST_RETRY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_to_an_hour_and_rate_limits_wait_longest() {
        let failed = IssueError {
            message: String::new(),
            rate_limited: false,
        };
        assert_eq!(retry_after(0, &failed), TimeDelta::seconds(30));
        assert_eq!(retry_after(1, &failed), TimeDelta::seconds(60));
        assert_eq!(retry_after(20, &failed), TimeDelta::hours(1));
        let limited = IssueError {
            message: String::new(),
            rate_limited: true,
        };
        assert_eq!(retry_after(0, &limited), TimeDelta::hours(1));
    }
}

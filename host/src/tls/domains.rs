//! Custom domains: which names are acceptable, how ownership is proven (a TXT record at
//! `_instanode-challenge.<domain>` holding the domain's token), and which app each proven
//! domain routes to.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::RwLock;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;

use crate::store::Store;

/// The label in front of a domain where its TXT proof lives.
pub const PROOF_LABEL: &str = "_instanode-challenge";

/// A domain as stored: lowercase, no trailing dot; `Err` says what is wrong with it.
pub fn normalize(domain: &str) -> Result<String, &'static str> {
    let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    if domain.is_empty() || domain.len() > 253 {
        return Err("a domain is 1 to 253 characters");
    }
    if domain.parse::<std::net::IpAddr>().is_ok() {
        return Err("an IP address is not a domain");
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return Err("a domain has at least two labels, like shop.example.com");
    }
    if !labels.iter().all(|label| crate::proxy::is_dns_label(label)) {
        return Err("each label is 1 to 63 letters, digits or inner hyphens (no wildcards)");
    }
    if labels
        .last()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("the last label cannot be all digits");
    }
    Ok(domain)
}

/// The name in a Host header, without its port.
pub fn name_of(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// Whether `domain` is `parent` or under it.
pub fn is_within(domain: &str, parent: &str) -> bool {
    let parent = parent.trim_matches('.').to_ascii_lowercase();
    !parent.is_empty() && (domain == parent || domain.ends_with(&format!(".{parent}")))
}

/// Proven domains and the app slug each routes to, as the proxy reads them.
#[derive(Default)]
pub struct DomainMap {
    slugs: RwLock<HashMap<String, String>>,
}

impl DomainMap {
    pub async fn reload(&self, store: &Store) -> sqlx::Result<()> {
        let routed: HashMap<String, String> = store.routed_domains().await?.into_iter().collect();
        *self.slugs.write().expect("domain map poisoned") = routed;
        Ok(())
    }

    /// The slug of the app `host` (a Host header; port and trailing dot ignored) routes to.
    pub fn slug_for(&self, host: &str) -> Option<String> {
        let name = name_of(host).trim_end_matches('.').to_ascii_lowercase();
        self.slugs
            .read()
            .expect("domain map poisoned")
            .get(&name)
            .cloned()
    }
}

/// Looks up domains' TXT proofs.
pub struct Prover {
    resolver: TokioResolver,
}

impl Prover {
    /// Asks `server` (a DNS server address), or the machine's resolvers.
    pub fn new(server: Option<SocketAddr>) -> anyhow::Result<Self> {
        let mut builder = match server {
            Some(server) => {
                let mut name_server = NameServerConfig::udp_and_tcp(server.ip());
                for connection in &mut name_server.connections {
                    connection.port = server.port();
                }
                TokioResolver::builder_with_config(
                    ResolverConfig::from_name_servers(vec![name_server]),
                    TokioRuntimeProvider::default(),
                )
            }
            None => TokioResolver::builder_tokio()?,
        };
        // An owner fixing a record wants the next check to see it, not a cached miss.
        let options = builder.options_mut();
        options.positive_max_ttl = Some(Duration::from_secs(1));
        options.negative_max_ttl = Some(Duration::from_secs(1));
        options.timeout = Duration::from_secs(5);
        Ok(Self {
            resolver: builder.build()?,
        })
    }

    /// Whether a TXT record at `_instanode-challenge.<domain>` holds `token`.
    pub async fn proves(&self, domain: &str, token: &str) -> bool {
        let Ok(lookup) = self
            .resolver
            .txt_lookup(format!("{PROOF_LABEL}.{domain}."))
            .await
        else {
            return false;
        };
        lookup.answers().iter().any(|record| match &record.data {
            RData::TXT(txt) => {
                let text: Vec<u8> = txt
                    .txt_data
                    .iter()
                    .flat_map(|s| s.iter().copied())
                    .collect();
                text.trim_ascii() == token.as_bytes()
            }
            _ => false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_names_not_addresses_or_wildcards() {
        assert_eq!(
            normalize("Shop.Example.COM."),
            Ok("shop.example.com".into())
        );
        assert_eq!(normalize("a-b.example.org"), Ok("a-b.example.org".into()));
        assert!(normalize("localhost").is_err());
        assert!(normalize("*.example.com").is_err());
        assert!(normalize("127.0.0.1").is_err());
        assert!(normalize("1.2.3.4").is_err());
        assert!(normalize("-a.example.com").is_err());
        assert!(normalize("a_b.example.com").is_err());
        assert!(normalize("a..example.com").is_err());
        assert!(normalize(&format!("{}.com", "a".repeat(64))).is_err());
        assert!(normalize("").is_err());
    }

    #[test]
    fn within_means_the_name_or_below_it() {
        assert!(is_within("apps.example.com", "apps.example.com"));
        assert!(is_within("x.apps.example.com", "apps.example.com"));
        assert!(!is_within("xapps.example.com", "apps.example.com"));
        assert!(!is_within("example.com", "apps.example.com"));
    }

    #[test]
    fn the_map_ignores_ports_case_and_trailing_dots() {
        let map = DomainMap::default();
        map.slugs
            .write()
            .unwrap()
            .insert("shop.example.com".into(), "shop-1a2b3c4d".into());
        assert_eq!(
            map.slug_for("SHOP.example.com:8443"),
            Some("shop-1a2b3c4d".into())
        );
        assert_eq!(
            map.slug_for("shop.example.com."),
            Some("shop-1a2b3c4d".into())
        );
        assert_eq!(map.slug_for("other.example.com"), None);
    }
}

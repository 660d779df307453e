//! Deployed apps: their URLs, their rollouts, and the checks on what callers upload.
//!
//! An app is a `deploy` resource served by a provider exporting `deployer`. The host keeps
//! the upload and the app's status, drives each rollout in the background (see
//! [`rollout`]), and routes the app's URL to the container the rollout started.

pub mod apps;
pub mod build_slots;
pub mod dockerfile;
pub mod manifest;
pub mod rollout;
pub mod routes;
pub mod source;
pub mod stacks;

use std::sync::Arc;

use anyhow::bail;

use crate::registry::Loaded;
use crate::services::Services;

/// The kind apps are created as, and the live provider that builds and runs them: the
/// component serving the kind its `describe` marks as created from a build context.
pub fn deployer(services: &Services) -> Option<(String, Arc<Loaded>)> {
    let kind = services.kinds.app_kind()?.name;
    let provider = services.registry.for_kind(&kind)?;
    Some((kind, provider))
}

/// The provider that looks after an existing app: the one that made it, even when
/// another now serves new deploys.
pub fn deployer_of(services: &Services, app: &crate::store::DeploymentRow) -> Option<Arc<Loaded>> {
    let kind = services.kinds.app_kind()?.name;
    services.registry.for_resource(&app.provider, &kind)
}

/// App URLs from a pattern such as `http://*.deployment.localhost:8080`.
#[derive(Debug, Clone)]
pub struct AppUrls {
    /// `http://`
    scheme: String,
    /// `deployment.localhost`
    domain: String,
    /// `:8080`, or empty.
    port: String,
}

impl AppUrls {
    pub fn parse(pattern: &str) -> anyhow::Result<Self> {
        let Some((scheme, rest)) = pattern.split_once("://") else {
            bail!("{pattern:?} is not a URL pattern like `http://*.apps.example.com`");
        };
        if !matches!(scheme, "http" | "https") {
            bail!("{pattern:?} must start with http:// or https://");
        }
        let Some(rest) = rest.strip_prefix("*.") else {
            bail!("{pattern:?} must have `*.` right after the scheme");
        };
        let rest = rest.trim_end_matches('/');
        let (domain, port) = match rest.rsplit_once(':') {
            Some((domain, port)) if port.parse::<u16>().is_ok() => (domain, format!(":{port}")),
            _ => (rest, String::new()),
        };
        if domain.is_empty()
            || domain.contains(['*', '/', '@'])
            || url::Url::parse(&format!("{scheme}://x.{domain}{port}")).is_err()
        {
            bail!("{pattern:?} does not name a domain after `*.`");
        }
        Ok(Self {
            scheme: format!("{scheme}://"),
            domain: domain.to_ascii_lowercase(),
            port,
        })
    }

    /// The URL of the app at `slug`.
    pub fn url(&self, slug: &str) -> String {
        format!("{}{slug}.{}{}", self.scheme, self.domain, self.port)
    }

    /// The domain apps live under, e.g. `deployment.localhost`.
    pub fn domain(&self) -> &str {
        &self.domain
    }
}

/// A new public app id: 8 lowercase hex characters.
pub fn new_app_id() -> String {
    let bytes: [u8; 4] = rand::random();
    hex::encode(bytes)
}

/// The URL label of an app: a readable part of its name, then its app id
/// (`expense-tracker-7a3f09c1`).
pub fn slug_for(name: &str, app_id: &str) -> String {
    let mut readable = String::new();
    for c in name.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            readable.push(c);
        } else if !readable.ends_with('-') {
            readable.push('-');
        }
        if readable.len() >= 30 {
            break;
        }
    }
    let readable = readable.trim_matches('-');
    if readable.is_empty() {
        app_id.to_string()
    } else {
        format!("{readable}-{app_id}")
    }
}

/// `text` fit for an error message: control characters escaped, at most `max` characters.
fn printable(text: &str, max: usize) -> String {
    let mut out = String::new();
    for (index, c) in text.chars().enumerate() {
        if index == max {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_urls_follow_the_pattern() {
        let urls = AppUrls::parse("http://*.deployment.localhost:8080").unwrap();
        assert_eq!(urls.domain(), "deployment.localhost");
        assert_eq!(urls.url("a-1"), "http://a-1.deployment.localhost:8080");
        let urls = AppUrls::parse("https://*.apps.example.com").unwrap();
        assert_eq!(urls.url("x"), "https://x.apps.example.com");
        for bad in [
            "deployment.localhost",
            "ftp://*.x",
            "http://x.*.y",
            "http://*.",
            "http://*.a/b",
        ] {
            assert!(AppUrls::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn slugs_are_dns_labels() {
        assert_eq!(
            slug_for("Expense Tracker!", "7a3f09c1"),
            "expense-tracker-7a3f09c1"
        );
        assert_eq!(slug_for("__", "7a3f09c1"), "7a3f09c1");
        let long = slug_for(&"x".repeat(64), "7a3f09c1");
        assert!(long.len() <= 63 && long.ends_with("-7a3f09c1"));
    }
}

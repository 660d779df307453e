//! Where each app's traffic goes, remembered for a moment so the proxy does not ask the
//! metadata store on every request. Only serving apps are remembered; every replica forgets
//! them all when any rollout or delete changes a route (see [`crate::replication`]), and
//! [`FRESH`] bounds how long a change missed while reconnecting goes unnoticed.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::proxy::{Endpoints, Upstream};
use crate::services::Services;

/// What a rollout records as an app's upstream when its provider runs it as a service of
/// the `services` capability: `service:<provider>/<service name>`.
const SERVICE_SCHEME: &str = "service:";

/// The upstream a rollout records for what `deployer.start` answered: an address as it is,
/// a service tagged with the provider whose engine runs it.
pub fn recorded(provider: &str, started: &str) -> String {
    match started.strip_prefix(SERVICE_SCHEME) {
        Some(service) => format!("{SERVICE_SCHEME}{provider}/{service}"),
        None => started.to_string(),
    }
}

/// Where a recorded upstream answers now: its address, or every running task of its
/// service (tasks move between nodes, so this is asked again whenever the cache expires).
/// `None` when the upstream names nothing this host knows.
pub async fn endpoints(services: &Services, upstream: &str) -> Option<Endpoints> {
    let Some(service) = upstream.strip_prefix(SERVICE_SCHEME) else {
        let address: std::net::SocketAddr = upstream.parse().ok()?;
        return Some(Endpoints::from([address]));
    };
    let (provider, name) = service.split_once('/')?;
    let provider = services.registry.get(provider)?;
    match provider.containers()?.service_endpoints(name).await {
        Ok(addresses) => Some(addresses.into()),
        Err(e) => {
            tracing::warn!(service, error = ?e, "cannot list the service's tasks");
            None
        }
    }
}

/// How long a route change missed by this replica may go unnoticed.
const FRESH: Duration = Duration::from_secs(2);
/// Routes remembered at most (then the cache starts over).
const MAX_ROUTES: usize = 10_000;

#[derive(Default)]
pub struct RouteCache {
    routes: Mutex<HashMap<String, (Upstream, Instant)>>,
}

impl RouteCache {
    /// Where `slug` is served, if looked up within [`FRESH`].
    pub fn get(&self, slug: &str) -> Option<Upstream> {
        let routes = self.routes.lock().ok()?;
        let (upstream, at) = routes.get(slug)?;
        (at.elapsed() < FRESH).then(|| upstream.clone())
    }

    /// Remembers a serving app's route (`Ready` or `Private`).
    pub fn put(&self, slug: String, upstream: Upstream) {
        if let Ok(mut routes) = self.routes.lock() {
            if routes.len() >= MAX_ROUTES {
                routes.clear();
            }
            routes.insert(slug, (upstream, Instant::now()));
        }
    }

    /// A route changed somewhere: look everything up again.
    pub fn forget_all(&self) {
        if let Ok(mut routes) = self.routes.lock() {
            routes.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_remembered_until_forgotten() {
        let cache = RouteCache::default();
        let address = Upstream::Ready(std::sync::Arc::from(["127.0.0.1:4000".parse().unwrap()]));
        assert_eq!(cache.get("a"), None);
        cache.put("a".into(), address.clone());
        assert_eq!(cache.get("a"), Some(address));
        cache.forget_all();
        assert_eq!(cache.get("a"), None);
    }
}

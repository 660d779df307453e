//! A tier's limits by name, and the request options likewise, instead of scanning the
//! contract's `(name, value)` lists.

use crate::deployer::App;
use crate::types::{Limit, ProvisionRequest, ResourceRef};

/// The limits the owner's tier sets for one resource, e.g. `connections` or `storage_mb`.
#[derive(Debug, Clone, Copy)]
pub struct Limits<'a>(&'a [Limit]);

impl<'a> Limits<'a> {
    pub fn new(limits: &'a [Limit]) -> Self {
        Self(limits)
    }

    /// The limit `name`, if the tier sets one.
    pub fn get(&self, name: &str) -> Option<u64> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| *v)
    }

    /// The limit `name`, or `default` when the tier sets none.
    pub fn get_or(&self, name: &str, default: u64) -> u64 {
        self.get(name).unwrap_or(default)
    }
}

impl ProvisionRequest {
    /// The tier's limits for the new resource.
    pub fn limits(&self) -> Limits<'_> {
        Limits::new(&self.limits)
    }

    /// The option `name` (a request field of the kind, or one the host adds), if sent.
    pub fn option(&self, name: &str) -> Option<&str> {
        self.options
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl ResourceRef {
    /// The tier's current limits for the resource.
    pub fn limits(&self) -> Limits<'_> {
        Limits::new(&self.limits)
    }
}

impl App {
    /// The tier's limits for the app, e.g. `memory_mb`, `cpu_millis`.
    pub fn limits(&self) -> Limits<'_> {
        Limits::new(&self.limits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_found_by_name() {
        let limits = vec![
            ("connections".to_string(), 5),
            ("storage_mb".to_string(), 10),
        ];
        let limits = Limits::new(&limits);
        assert_eq!(limits.get("connections"), Some(5));
        assert_eq!(limits.get("streams"), None);
        assert_eq!(limits.get_or("streams", 2), 2);
        assert_eq!(limits.get_or("storage_mb", 2), 10);
    }

    #[test]
    fn options_are_found_by_name() {
        let request = ProvisionRequest {
            resource_id: "a1".repeat(16),
            name: "n".into(),
            kind: "deploy".into(),
            tier: "anonymous".into(),
            limits: vec![],
            options: vec![("url".into(), "https://app.example".into())],
        };
        assert_eq!(request.option("url"), Some("https://app.example"));
        assert_eq!(request.option("network"), None);
        assert_eq!(request.limits().get("connections"), None);
    }
}

//! Where tenants reach a provider's backend: the settings every provider with a network
//! endpoint reads, and the public and internal URLs built from them.

/// A `(host, port)` pair from the settings.
type Address = (String, String);

/// The addresses a provider hands out.
pub struct Endpoint {
    public: Address,
    internal: Option<Address>,
}

impl Endpoint {
    /// Reads `public_host`, `public_port` (required) and `internal_host`, `internal_port`
    /// through `setting`.
    pub fn from_settings(setting: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let required = |key: &str| {
            setting(key).ok_or_else(|| format!("provider setting `{key}` is not configured"))
        };
        let public = (required("public_host")?, required("public_port")?);
        let internal = setting("internal_host").map(|host| {
            let port = setting("internal_port").unwrap_or_else(|| public.1.clone());
            (host, port)
        });
        Ok(Self { public, internal })
    }

    /// `(connection_url, internal_url)`, each made by `url(host, port)`.
    pub fn urls(&self, url: impl Fn(&str, &str) -> String) -> (String, Option<String>) {
        (
            url(&self.public.0, &self.public.1),
            self.internal.as_ref().map(|(h, p)| url(h, p)),
        )
    }
}

#[cfg(feature = "sdk")]
impl Endpoint {
    /// [`Endpoint::from_settings`] over the provider's own settings. A missing one is the
    /// operator's problem, so it is an internal error.
    pub fn from_config() -> Result<Self, crate::types::ProviderError> {
        Self::from_settings(crate::config::get).map_err(crate::types::ProviderError::Internal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_internal_port_defaults_to_the_public_one() {
        let settings = |key: &str| match key {
            "public_host" => Some("db.example".to_string()),
            "public_port" => Some("5432".to_string()),
            "internal_host" => Some("db.internal".to_string()),
            _ => None,
        };
        let endpoint = Endpoint::from_settings(settings).unwrap();
        let (public, internal) = endpoint.urls(|h, p| format!("x://{h}:{p}"));
        assert_eq!(public, "x://db.example:5432");
        assert_eq!(internal.as_deref(), Some("x://db.internal:5432"));
        assert!(Endpoint::from_settings(|_| None).is_err());
    }
}

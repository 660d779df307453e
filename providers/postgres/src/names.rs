//! Backend identifiers built only from validated values, never from user text.

use crate::ProviderError;

/// A PostgreSQL identifier restricted to `[a-z0-9_]`, 1..=63 bytes, so quoting it is trivial
/// and it can never carry SQL.
#[derive(Debug, Clone)]
pub struct Ident(String);

impl Ident {
    pub fn new(value: &str) -> Result<Self, ProviderError> {
        let valid = !value.is_empty()
            && value.len() <= 63
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if valid {
            Ok(Self(value.to_string()))
        } else {
            Err(ProviderError::InvalidRequest(format!(
                "not a safe identifier: {value:?}"
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The identifier in double quotes, ready for a statement.
    pub fn quoted(&self) -> String {
        format!("\"{}\"", self.0)
    }
}

/// Quotes a name read back from the catalog (a tenant's schema, say), which may hold any
/// character: doubled double quotes cannot close the identifier. Catalog names never
/// contain NUL.
pub fn quote_catalog_name(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The role and database that belong to one resource.
pub struct ResourceNames {
    pub database: Ident,
    pub role: Ident,
    /// Holds the tenant's objects while the resource is suspended.
    pub holder: Ident,
}

impl ResourceNames {
    /// Derives the names from the host's resource id (32 lowercase hex characters).
    pub fn for_resource(resource_id: &str) -> Result<Self, ProviderError> {
        let hex = instanode_provider_kit::resource_hex(resource_id)?;
        Ok(Self {
            database: Ident::new(&format!("db_{hex}"))?,
            role: Ident::new(&format!("usr_{hex}"))?,
            holder: Ident::new(&format!("sus_{hex}"))?,
        })
    }
}

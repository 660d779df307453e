//! The instanode provider SDK.
//!
//! With the `sdk` feature, this crate is everything a provider component needs besides its
//! own backend logic:
//!
//! - the contract's bindings, generated once from `wit/` ([`bindings`]), with the contract
//!   types in [`types`] and every capability as a module of its own ([`sql`], [`redis`],
//!   [`config`], ...);
//! - the [`Provider`] trait, with defaults for what most providers do alike, and
//!   [`Deployer`] and [`Objects`] for the two extended worlds;
//! - the export macros: [`export_provider!`], [`export_deploy_provider!`] and
//!   [`export_storage_provider!`];
//! - helpers: [`errors`] (capability failures as provider errors), [`Limits`] (a tier's
//!   limits by name), [`settings`] (operator settings with defaults), [`postgres`] (SQL
//!   statements and role chores for providers on a shared PostgreSQL), [`data_kind`] and
//!   [`Endpoint`](endpoint::Endpoint).
//!
//! A provider is then a type, `impl Provider for MyType { .. }`, and one macro line:
//!
//! ```ignore
//! use instanode_provider_kit::Provider;
//!
//! struct MyProvider;
//!
//! impl Provider for MyProvider {
//!     // describe, provision, deprovision, usage, check; the rest have defaults
//! }
//!
//! instanode_provider_kit::export_provider!(MyProvider);
//! ```
//!
//! Without `sdk`, the crate is plain Rust that builds anywhere: resource ids, passwords,
//! [`Endpoint`](endpoint::Endpoint), and NATS JWTs (`nats` feature), which the host uses too.

pub mod endpoint;
#[cfg(feature = "nats")]
pub mod nats_jwt;

#[cfg(feature = "sdk")]
pub mod bindings;
#[cfg(feature = "sdk")]
pub mod errors;
#[cfg(feature = "sdk")]
mod export;
#[cfg(feature = "sdk")]
mod kinds;
#[cfg(feature = "sdk")]
mod limits;
#[cfg(feature = "sdk")]
pub mod postgres;
#[cfg(feature = "sdk")]
mod provider;
#[cfg(feature = "sdk")]
pub mod settings;

#[cfg(feature = "sdk")]
pub use bindings::deployer;
#[cfg(feature = "sdk")]
pub use bindings::instanode::provider::{
    config, containers, kv, log, mongo, nats, redis, s3, services, signer, sql, types,
};
#[cfg(feature = "sdk")]
pub use bindings::objects;
#[cfg(feature = "sdk")]
pub use kinds::data_kind;
#[cfg(feature = "sdk")]
pub use limits::Limits;
#[cfg(feature = "sdk")]
pub use provider::{Deployer, Export, Objects, Provider};

use std::fmt;

/// Why a helper of this crate failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KitError {
    /// A resource id that is not 32 lowercase hex characters: the caller's mistake.
    InvalidResourceId(String),
    /// WASI gave no random bytes.
    NoRandomness(String),
}

impl fmt::Display for KitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidResourceId(message) | Self::NoRandomness(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for KitError {}

/// Helpers that report errors as text (the NATS JWT code) take the message.
impl From<KitError> for String {
    fn from(error: KitError) -> Self {
        error.to_string()
    }
}

/// The host's resource id, checked: 32 lowercase hex characters, so every backend name
/// derived from it is a safe identifier without quoting tricks.
pub fn resource_hex(resource_id: &str) -> Result<&str, KitError> {
    let is_hex = resource_id.len() == 32
        && resource_id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if is_hex {
        Ok(resource_id)
    } else {
        Err(KitError::InvalidResourceId(format!(
            "resource id must be 32 lowercase hex characters, got {resource_id:?}"
        )))
    }
}

/// `N` random bytes from the host (WASI random).
pub fn random_bytes<const N: usize>() -> Result<[u8; N], KitError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)
        .map_err(|e| KitError::NoRandomness(format!("no randomness: {e}")))?;
    Ok(bytes)
}

/// 32 characters from `[A-Za-z0-9]`: about 190 bits, safe in any URL without escaping.
pub fn random_password() -> Result<String, KitError> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut password = String::new();
    while password.len() < 32 {
        // Rejection sampling keeps every character equally likely.
        password.extend(
            random_bytes::<64>()?
                .iter()
                .filter(|b| usize::from(**b) < 248)
                .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char),
        );
    }
    password.truncate(32);
    Ok(password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_ids_must_be_hex() {
        assert!(resource_hex(&"a1".repeat(16)).is_ok());
        assert!(resource_hex("A1").is_err());
        assert!(resource_hex(&"g1".repeat(16)).is_err());
        assert!(resource_hex(&format!("{}\"", "a".repeat(31))).is_err());
    }

    #[test]
    fn passwords_are_long_and_url_safe() {
        let p = random_password().unwrap();
        assert_eq!(p.len(), 32);
        assert!(p.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(p, random_password().unwrap());
    }
}

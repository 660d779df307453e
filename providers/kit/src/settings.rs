//! The provider's operator settings (`[providers.<name>.config]`), read through the
//! always-granted `config` capability.

use std::str::FromStr;

use crate::config;
use crate::types::ProviderError;

/// The setting `key`, if the operator set it.
pub fn get(key: &str) -> Option<String> {
    config::get(key)
}

/// The setting `key`, or `default` when it is unset.
pub fn get_or(key: &str, default: &str) -> String {
    get(key).unwrap_or_else(|| default.into())
}

/// The setting `key` parsed as a `T`, or `default` when it is unset or does not parse.
pub fn parse_or<T: FromStr>(key: &str, default: T) -> T {
    get(key).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The setting `key`; without it the provider cannot work, which is the operator's problem.
pub fn required(key: &str) -> Result<String, ProviderError> {
    get(key).ok_or_else(|| {
        ProviderError::Internal(format!("provider setting `{key}` is not configured"))
    })
}

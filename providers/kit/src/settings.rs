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

/// Whether the setting `key` is exactly `value`.
pub fn is(key: &str, value: &str) -> bool {
    get(key).as_deref() == Some(value)
}

/// The setting `key` (or `default`) as a plain backend name, safe to quote into a statement:
/// 1 to 63 of `[A-Za-z0-9_-]`.
pub fn plain_name_or(key: &str, default: &str) -> Result<String, ProviderError> {
    let name = get_or(key, default);
    let plain = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if (1..=63).contains(&name.len()) && name.chars().all(plain) {
        return Ok(name);
    }
    Err(ProviderError::InvalidRequest(format!(
        "setting `{key}` must be a plain name, not {name:?}"
    )))
}

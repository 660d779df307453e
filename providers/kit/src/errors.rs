//! Capability failures as provider errors: the host must learn whether a retry may help
//! (`backend-unavailable`, answered 503) or something is plainly wrong (`internal`).
//!
//! The rule is the same for every capability: unreachable or slow is retryable, and so are
//! the backend codes that mean "restarting" or "overloaded"; anything else is internal.
//! A provider with codes of its own to tell apart (a duplicate that means a concurrent twin
//! won, say) matches those first and hands the rest to [`Capability::error`].

use crate::KitError;
use crate::types::{CapabilityError, ProviderError};

/// The `sql` capability. PostgreSQL's admin_shutdown, cannot_connect_now and
/// too_many_connections mean the server is going down, starting or full.
pub const SQL: Capability = Capability::new("sql", &["57P01", "57P03", "53300"]);

/// The `redis` capability: still loading its data, busy with a script, or a replica without
/// its primary.
pub const REDIS: Capability = Capability::new("redis", &["LOADING", "BUSY", "MASTERDOWN"]);

/// The `mongo` capability.
pub const MONGO: Capability = Capability::new("mongo", &[]);

/// The `s3` capability.
pub const S3: Capability = Capability::new("s3", &[]);

/// How one capability's failures become provider errors.
#[derive(Debug, Clone, Copy)]
pub struct Capability {
    /// Prefixes the message of an internal error, so the operator sees where it came from.
    name: &'static str,
    /// Backend codes after which a retry may succeed.
    retryable: &'static [&'static str],
}

impl Capability {
    pub const fn new(name: &'static str, retryable: &'static [&'static str]) -> Self {
        Self { name, retryable }
    }

    /// Whether the backend code `code` means a retry may succeed.
    pub fn is_retryable(&self, code: &str) -> bool {
        self.retryable.contains(&code)
    }

    /// The provider error for a failed call of this capability.
    pub fn error(&self, e: CapabilityError) -> ProviderError {
        match e {
            CapabilityError::Unavailable(m) | CapabilityError::Timeout(m) => {
                ProviderError::BackendUnavailable(m)
            }
            CapabilityError::Backend(e) if self.is_retryable(&e.code) => {
                ProviderError::BackendUnavailable(e.message)
            }
            other => ProviderError::Internal(format!("{}: {other:?}", self.name)),
        }
    }
}

/// The rule without retryable codes or a name, so `?` works on any capability call.
impl From<CapabilityError> for ProviderError {
    fn from(e: CapabilityError) -> Self {
        match e {
            CapabilityError::Unavailable(m) | CapabilityError::Timeout(m) => {
                ProviderError::BackendUnavailable(m)
            }
            other => ProviderError::Internal(format!("{other:?}")),
        }
    }
}

/// A malformed resource id is the caller's fault; missing randomness is the host's.
impl From<KitError> for ProviderError {
    fn from(e: KitError) -> Self {
        match e {
            KitError::InvalidResourceId(m) => ProviderError::InvalidRequest(m),
            KitError::NoRandomness(m) => ProviderError::Internal(m),
        }
    }
}

/// What `resume` (or a call that needs the resource) answers when it was deprovisioned.
pub fn gone() -> ProviderError {
    ProviderError::Conflict("the resource no longer exists".into())
}

/// Something the operator has to look at.
pub fn internal(message: impl std::fmt::Display) -> ProviderError {
    ProviderError::Internal(message.to_string())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::types::BackendError;

    /// A backend failure with SQLSTATE (or other code) `code`.
    pub(crate) fn backend(code: &str) -> CapabilityError {
        CapabilityError::Backend(BackendError {
            code: code.into(),
            message: format!("{code} happened"),
        })
    }

    #[test]
    fn unreachable_and_restarting_backends_are_retryable() {
        assert!(matches!(
            SQL.error(CapabilityError::Timeout("slow".into())),
            ProviderError::BackendUnavailable(m) if m == "slow"
        ));
        assert!(matches!(
            SQL.error(backend("57P03")),
            ProviderError::BackendUnavailable(m) if m == "57P03 happened"
        ));
        assert!(matches!(
            REDIS.error(backend("LOADING")),
            ProviderError::BackendUnavailable(_)
        ));
    }

    #[test]
    fn anything_else_is_internal_and_names_the_capability() {
        match SQL.error(backend("42704")) {
            ProviderError::Internal(m) => {
                assert!(m.starts_with("sql: ") && m.contains("42704"), "{m}")
            }
            other => panic!("{other:?}"),
        }
        match ProviderError::from(backend("LOADING")) {
            ProviderError::Internal(m) => assert!(m.contains("LOADING"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            ProviderError::from(CapabilityError::Unavailable("down".into())),
            ProviderError::BackendUnavailable(_)
        ));
    }

    #[test]
    fn kit_errors_keep_their_message() {
        let e = crate::resource_hex("nope").unwrap_err();
        assert!(matches!(
            ProviderError::from(e),
            ProviderError::InvalidRequest(m) if m.contains("32 lowercase hex")
        ));
    }
}

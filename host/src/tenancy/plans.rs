//! Tiers and the limits each grants per resource kind.

use std::time::Duration;

/// The tier of callers without an account.
pub const ANONYMOUS: &str = "anonymous";

/// How long an anonymous resource lives unless claimed.
pub const ANONYMOUS_TTL: Duration = Duration::from_secs(24 * 3600);

/// The limits a tier grants for one kind, as `(name, value)` pairs the provider enforces.
pub fn limits(tier: &str, kind: &str) -> Vec<(String, u64)> {
    let table: &[(&str, u64)] = match (tier, kind) {
        (ANONYMOUS, "db" | "vector") => &[("storage_mb", 10), ("connections", 2)],
        _ => &[],
    };
    table.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

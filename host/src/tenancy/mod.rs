//! Who may provision what: callers and their fingerprints, caps, names, tiers and their
//! limits, upgrade tokens.

pub mod caps;
pub mod client;
pub mod email;
pub mod names;
pub mod plans;
pub mod rate_limit;
pub mod tokens;

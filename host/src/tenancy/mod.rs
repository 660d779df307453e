//! Who may provision what: names, tiers and their limits, upgrade tokens.

pub mod names;
pub mod plans;
pub mod tokens;

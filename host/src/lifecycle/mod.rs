//! Resource lifecycle: the provision saga (and, later, deprovision, reapers, quotas).

pub mod maintenance;
pub mod provision;

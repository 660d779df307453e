//! Resource lifecycle: the provision and deprovision sagas, the reaper, quota metering and
//! provider upkeep.

pub mod deprovision;
pub mod error;
pub mod maintenance;
pub mod meter;
pub mod provision;
pub mod reaper;
pub mod stored;
pub mod tiers;

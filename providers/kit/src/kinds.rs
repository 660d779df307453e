//! Ready-made `kind-info` for the common case.

use crate::types::{Creation, KindInfo};

/// A kind created by a JSON body, reachable by apps, with rotatable credentials and no
/// extra request fields: a database, a cache, a queue, a bucket prefix.
pub fn data_kind(name: &str, label: &str, env_var: &str) -> KindInfo {
    KindInfo {
        name: name.into(),
        label: label.into(),
        creation: Creation::JsonBody,
        rotatable: true,
        internal: true,
        env_var: env_var.into(),
        request_fields: vec![],
    }
}

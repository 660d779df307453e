//! `kv`: small private state per provider, stored in the metadata database.

use super::{HostState, cap_error};
use crate::contract::instanode::provider::kv::Host;
use crate::contract::instanode::provider::types::CapabilityError;
use crate::store::KvStore;

const MAX_KEY: usize = 512;
const MAX_VALUE: usize = 64 * 1024;

impl HostState {
    fn kv(&self) -> Result<&KvStore, CapabilityError> {
        self.bindings
            .kv
            .as_ref()
            .ok_or_else(|| cap_error("not-granted", "kv is not granted"))
    }
}

fn check_key(key: &str) -> Result<(), CapabilityError> {
    if key.len() > MAX_KEY {
        return Err(cap_error(
            "invalid",
            format!("keys are at most {MAX_KEY} bytes"),
        ));
    }
    Ok(())
}

fn db_error(e: sqlx::Error) -> CapabilityError {
    tracing::warn!(error = %e, "kv capability failed");
    cap_error("unavailable", "provider state store is unavailable")
}

impl Host for HostState {
    async fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, CapabilityError> {
        check_key(&key)?;
        self.kv()?.get(&key).await.map_err(db_error)
    }

    async fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), CapabilityError> {
        check_key(&key)?;
        if value.len() > MAX_VALUE {
            return Err(cap_error(
                "invalid",
                format!("values are at most {MAX_VALUE} bytes"),
            ));
        }
        self.kv()?.set(&key, &value).await.map_err(db_error)
    }

    async fn delete(&mut self, key: String) -> Result<(), CapabilityError> {
        check_key(&key)?;
        self.kv()?.delete(&key).await.map_err(db_error)
    }

    async fn list_keys(
        &mut self,
        prefix: String,
        limit: u32,
    ) -> Result<Vec<String>, CapabilityError> {
        check_key(&prefix)?;
        self.kv()?
            .list_keys(&prefix, limit.min(1000))
            .await
            .map_err(db_error)
    }
}

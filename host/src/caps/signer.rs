//! `signer`: signs with host keys the operator granted to a provider. The keys themselves
//! never enter a component.

use std::sync::Arc;

use super::{HostState, cap_error};
use crate::contract::instanode::provider::signer::Host;
use crate::contract::instanode::provider::types::CapabilityError;
use crate::store::{HostKey, KeyRing};

/// The keys one provider may sign with.
pub struct SignerBackend {
    keys: Arc<KeyRing>,
    granted: Vec<HostKey>,
}

impl SignerBackend {
    pub fn new(keys: Arc<KeyRing>, granted: Vec<HostKey>) -> Self {
        Self { keys, granted }
    }

    async fn key(&self, name: &str) -> Result<Arc<nkeys::KeyPair>, CapabilityError> {
        let key: HostKey = name.parse().map_err(|e: String| cap_error("invalid", e))?;
        if !self.granted.contains(&key) {
            return Err(cap_error(
                "not-granted",
                format!("key `{key}` is not granted to this provider"),
            ));
        }
        self.keys
            .get(key)
            .await
            .map_err(|e| cap_error("unavailable", format!("{e:#}")))
    }
}

impl HostState {
    fn signer(&self) -> Result<&SignerBackend, CapabilityError> {
        self.bindings
            .signer
            .as_ref()
            .ok_or_else(|| cap_error("not-granted", "signer is not granted"))
    }
}

impl Host for HostState {
    async fn sign(
        &mut self,
        key_name: String,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, CapabilityError> {
        let key = self.signer()?.key(&key_name).await?;
        key.sign(&payload).map_err(|e| cap_error("internal", e))
    }

    async fn public_key(&mut self, key_name: String) -> Result<String, CapabilityError> {
        Ok(self.signer()?.key(&key_name).await?.public_key())
    }
}

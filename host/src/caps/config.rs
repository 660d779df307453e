//! `config`: a provider reads its operator settings.

use super::HostState;
use crate::contract::instanode::provider::config::Host;

impl Host for HostState {
    async fn get(&mut self, key: String) -> Option<String> {
        self.bindings.settings.get(&key).cloned()
    }
}

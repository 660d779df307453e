//! `log`: provider lines in the host's log, tagged with provider and request id.

use super::HostState;
use crate::contract::instanode::provider::log::{Host, Level};

/// Longest line kept; a provider cannot flood the log with one call.
const MAX_LINE: usize = 4096;

impl Host for HostState {
    async fn write(&mut self, level: Level, message: String) {
        let mut message = message;
        if message.len() > MAX_LINE {
            let cut = (0..=MAX_LINE)
                .rev()
                .find(|i| message.is_char_boundary(*i))
                .unwrap_or(0);
            message.truncate(cut);
        }
        let provider = self.bindings.provider.as_str();
        let request_id = self.request_id.as_str();
        match level {
            Level::Debug => tracing::debug!(provider, request_id, "{message}"),
            Level::Info => tracing::info!(provider, request_id, "{message}"),
            Level::Warn => tracing::warn!(provider, request_id, "{message}"),
            Level::Error => tracing::error!(provider, request_id, "{message}"),
        }
    }
}

//! Making an app's image: building its uploaded context, or pulling its prebuilt image.
//! The single-engine and the Swarm deploy providers share this file.

use instanode_provider_kit::containers;
use instanode_provider_kit::deployer::{App, Built};
use instanode_provider_kit::log::{self, Level};
use instanode_provider_kit::settings;
use instanode_provider_kit::types::{CapabilityError, ProviderError};

use crate::autopsy::{self, Reason};

const DEFAULT_BUILD_MEMORY_MB: u64 = 1024;
const DEFAULT_BUILD_DEADLINE_SECONDS: u32 = 600;

/// The app's image under `tag`: built from its context, or its prebuilt image pulled and
/// pinned to the digest it has now.
pub fn make(target: &App, tag: String) -> Result<Built, ProviderError> {
    if let Some(image) = &target.image {
        return pull(image, tag, target.port);
    }
    let memory = settings::parse_or("build_memory_mb", DEFAULT_BUILD_MEMORY_MB) << 20;
    let deadline = settings::parse_or("build_deadline_seconds", DEFAULT_BUILD_DEADLINE_SECONDS);
    let failed = |reason, e: &instanode_provider_kit::types::BackendError| {
        Ok(Built::Failed(autopsy::failure(
            reason,
            None,
            lines(&e.message),
            target.port,
        )))
    };
    match containers::build(&target.context_ref, &tag, memory, deadline) {
        Ok(_) => Ok(Built::Image(tag)),
        Err(CapabilityError::Backend(e)) if e.code == "build-failed" => {
            failed(Reason::BuildFailed, &e)
        }
        Err(CapabilityError::Backend(e)) if e.code == "deadline" => {
            failed(Reason::DeadlineExceeded, &e)
        }
        Err(e) => Err(unavailable(e)),
    }
}

fn pull(image: &str, tag: String, port: u16) -> Result<Built, ProviderError> {
    match containers::pull(image, &tag) {
        Ok(pinned) => {
            log::write(Level::Info, &format!("pulled {image} as {pinned}"));
            Ok(Built::Image(tag))
        }
        Err(CapabilityError::Backend(e))
            if e.code == "pull-failed" || e.code == "registry-not-allowed" =>
        {
            Ok(Built::Failed(autopsy::failure(
                Reason::PullFailed,
                None,
                lines(&e.message),
                port,
            )))
        }
        Err(e) => Err(unavailable(e)),
    }
}

pub fn unavailable(e: CapabilityError) -> ProviderError {
    ProviderError::BackendUnavailable(format!("{e:?}"))
}

fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::to_string).collect()
}

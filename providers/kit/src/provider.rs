//! What a provider implements, and the glue that hands it to the generated bindings.

use std::marker::PhantomData;

use crate::bindings::exports::instanode::provider::provisioner;
use crate::deployer::{self, App, Built, Started};
use crate::objects::{self, Presigned};
use crate::types::{
    Info, ObjectMethod, ProviderError, ProvisionRequest, Provisioned, ResourceRef, UsageReport,
};

/// A provider: the `provisioner` interface of the contract (`wit/provisioner.wit`).
///
/// Every call runs in a fresh instance, so the functions take no `self`: whatever must last
/// lives in the backend or in the resource's sealed `state`. Export the type with
/// [`export_provider!`](crate::export_provider).
pub trait Provider {
    /// Name, version and the kinds served. The host calls it at load time, so it must not
    /// touch any backend.
    fn describe() -> Info;

    /// Creates the resource, or adopts what an earlier attempt with the same resource id
    /// created. It is only called with a kind [`describe`](Provider::describe) names: the
    /// SDK answers any other with `invalid-request` ("unknown kind").
    fn provision(request: ProvisionRequest) -> Result<Provisioned, ProviderError>;

    /// Removes everything the resource owns; succeeds when it is already gone.
    fn deprovision(target: ResourceRef) -> Result<(), ProviderError>;

    /// What the resource consumes right now.
    fn usage(target: ResourceRef) -> Result<UsageReport, ProviderError>;

    /// Stops an over-quota resource from growing. The default does nothing, which is right
    /// only where the host's own refusal is the whole enforcement (a storage provider whose
    /// suspended resources get no upload URLs, say): a backend tenants reach directly must
    /// take their write rights away here.
    fn suspend(target: ResourceRef) -> Result<(), ProviderError> {
        let _ = target;
        Ok(())
    }

    /// Undoes [`suspend`](Provider::suspend) and applies the current limits. The default
    /// does nothing, to match the default `suspend`.
    fn resume(target: ResourceRef) -> Result<(), ProviderError> {
        let _ = target;
        Ok(())
    }

    /// Whether the backend is ready; the message appears in `/readyz`. The default, for a
    /// provider without a backend, says so.
    fn check() -> Result<String, ProviderError> {
        Ok(format!("{} provider has no backend", Self::describe().name))
    }

    /// Background upkeep, such as refilling a pool. The default has nothing to do.
    fn maintain() -> Result<(), ProviderError> {
        Ok(())
    }
}

/// A deploy provider: a [`Provider`] that also turns build contexts into running apps
/// (`wit/deployer.wit`). Export it with
/// [`export_deploy_provider!`](crate::export_deploy_provider).
pub trait Deployer: Provider {
    /// Builds the app's image from its uploaded context.
    fn build(target: App) -> Result<Built, ProviderError>;

    /// Starts `image` for the app and waits until it answers HTTP.
    fn start(target: App, image: String) -> Result<Started, ProviderError>;

    /// The app's last `tail` output lines.
    fn logs(target: App, tail: u32) -> Result<Vec<String>, ProviderError>;
}

/// An object-storage provider: a [`Provider`] that also signs URLs for one object of a
/// resource (`wit/objects.wit`). Export it with
/// [`export_storage_provider!`](crate::export_storage_provider).
pub trait Objects: Provider {
    /// A URL allowing `method` on the resource's object `key` for `expires_in_seconds`.
    fn presign(
        target: ResourceRef,
        method: ObjectMethod,
        key: String,
        expires_in_seconds: u32,
    ) -> Result<Presigned, ProviderError>;
}

/// Provider `P` as the generated bindings want it. Only the export macros name it.
#[doc(hidden)]
pub struct Export<P>(PhantomData<P>);

impl<P: Provider> provisioner::Guest for Export<P> {
    fn describe() -> Info {
        P::describe()
    }

    fn provision(request: ProvisionRequest) -> Result<Provisioned, ProviderError> {
        let served = P::describe().kinds.iter().any(|k| k.name == request.kind);
        if !served {
            return Err(ProviderError::InvalidRequest(format!(
                "unknown kind {}",
                request.kind
            )));
        }
        P::provision(request)
    }

    fn deprovision(target: ResourceRef) -> Result<(), ProviderError> {
        P::deprovision(target)
    }

    fn usage(target: ResourceRef) -> Result<UsageReport, ProviderError> {
        P::usage(target)
    }

    fn suspend(target: ResourceRef) -> Result<(), ProviderError> {
        P::suspend(target)
    }

    fn resume(target: ResourceRef) -> Result<(), ProviderError> {
        P::resume(target)
    }

    fn check() -> Result<String, ProviderError> {
        P::check()
    }

    fn maintain() -> Result<(), ProviderError> {
        P::maintain()
    }
}

impl<P: Deployer> deployer::Guest for Export<P> {
    fn build(target: App) -> Result<Built, ProviderError> {
        P::build(target)
    }

    fn start(target: App, image: String) -> Result<Started, ProviderError> {
        P::start(target, image)
    }

    fn logs(target: App, tail: u32) -> Result<Vec<String>, ProviderError> {
        P::logs(target, tail)
    }
}

impl<P: Objects> objects::Guest for Export<P> {
    fn presign(
        target: ResourceRef,
        method: ObjectMethod,
        key: String,
        expires_in_seconds: u32,
    ) -> Result<Presigned, ProviderError> {
        P::presign(target, method, key, expires_in_seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data_kind;

    struct Minimal;

    impl Provider for Minimal {
        fn describe() -> Info {
            Info {
                name: "minimal".into(),
                version: "1.0.0".into(),
                kinds: vec![data_kind("thing", "thing", "THING_URL")],
            }
        }

        fn provision(request: ProvisionRequest) -> Result<Provisioned, ProviderError> {
            Ok(Provisioned {
                connection_url: format!("thing://{}", request.resource_id),
                internal_url: None,
                fields: vec![],
                state: String::new(),
            })
        }

        fn deprovision(_: ResourceRef) -> Result<(), ProviderError> {
            Ok(())
        }

        fn usage(_: ResourceRef) -> Result<UsageReport, ProviderError> {
            Err(ProviderError::Internal("not measured".into()))
        }
    }

    fn request(kind: &str) -> ProvisionRequest {
        ProvisionRequest {
            resource_id: "a1".repeat(16),
            name: "n".into(),
            kind: kind.into(),
            tier: "anonymous".into(),
            limits: vec![],
            options: vec![],
        }
    }

    #[test]
    fn provision_is_called_only_for_a_described_kind() {
        use provisioner::Guest;
        assert!(Export::<Minimal>::provision(request("thing")).is_ok());
        match Export::<Minimal>::provision(request("other")) {
            Err(ProviderError::InvalidRequest(m)) => assert_eq!(m, "unknown kind other"),
            other => panic!("expected an unknown kind, got {other:?}"),
        }
    }

    #[test]
    fn the_defaults_do_nothing_and_say_there_is_no_backend() {
        use provisioner::Guest;
        assert_eq!(
            Export::<Minimal>::check().unwrap(),
            "minimal provider has no backend"
        );
        assert!(Export::<Minimal>::maintain().is_ok());
    }
}

//! The macros that make a provider type the component's exports: one line per provider.
//!
//! The generated export macros take a plain identifier, so each macro names
//! `Export<YourType>` through a local type alias first.

/// Exports a [`Provider`](crate::Provider) as a component of the `provider` world.
///
/// ```ignore
/// instanode_provider_kit::export_provider!(MyProvider);
/// ```
#[macro_export]
macro_rules! export_provider {
    ($provider:ty) => {
        const _: () = {
            type InstanodeProviderExport = $crate::Export<$provider>;
            $crate::bindings::export_provider_world!(
                InstanodeProviderExport with_types_in $crate::bindings
            );
        };
    };
}

/// Exports a [`Deployer`](crate::Deployer) as a component of the `deploy-provider` world.
///
/// ```ignore
/// instanode_provider_kit::export_deploy_provider!(MyDeployProvider);
/// ```
#[macro_export]
macro_rules! export_deploy_provider {
    ($provider:ty) => {
        $crate::export_provider!($provider);
        const _: () = {
            type InstanodeDeployerExport = $crate::Export<$provider>;
            $crate::bindings::deploy::export_deployer!(
                InstanodeDeployerExport with_types_in $crate::bindings::deploy
            );
        };
    };
}

/// Exports an [`Objects`](crate::Objects) provider as a component of the
/// `storage-provider` world.
///
/// ```ignore
/// instanode_provider_kit::export_storage_provider!(MyStorageProvider);
/// ```
#[macro_export]
macro_rules! export_storage_provider {
    ($provider:ty) => {
        $crate::export_provider!($provider);
        const _: () = {
            type InstanodeObjectsExport = $crate::Export<$provider>;
            $crate::bindings::storage::export_objects!(
                InstanodeObjectsExport with_types_in $crate::bindings::storage
            );
        };
    };
}

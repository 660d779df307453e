//! Host-side bindings generated from the contract in `wit/`: the types and worlds that
//! capabilities (`caps`), the registry and the lifecycle all speak, owned by none of them.

wasmtime::component::bindgen!({
    world: "provider",
    path: "../wit",
    imports: { default: async },
    exports: { default: async },
});

pub use self::instanode::provider::types;

/// Bindings of a world that adds an export to `provider`. Its imports are the ones above,
/// so one `HostState` serves every world.
macro_rules! provider_with_export {
    ($world:tt) => {
        wasmtime::component::bindgen!({
            world: $world,
            path: "../wit",
            imports: { default: async },
            exports: { default: async },
            with: {
                "instanode:provider/types": super::instanode::provider::types,
                "instanode:provider/config": super::instanode::provider::config,
                "instanode:provider/log": super::instanode::provider::log,
                "instanode:provider/kv": super::instanode::provider::kv,
                "instanode:provider/sql": super::instanode::provider::sql,
                "instanode:provider/redis": super::instanode::provider::redis,
                "instanode:provider/mongo": super::instanode::provider::mongo,
                "instanode:provider/nats": super::instanode::provider::nats,
                "instanode:provider/signer": super::instanode::provider::signer,
                "instanode:provider/s3": super::instanode::provider::s3,
                "instanode:provider/containers": super::instanode::provider::containers,
                "instanode:provider/services": super::instanode::provider::services,
            },
        });
    };
}

/// The `deploy-provider` world: `provider` plus the `deployer` export.
pub mod deploy {
    provider_with_export!("deploy-provider");

    pub use self::exports::instanode::provider::deployer;
}

/// The `storage-provider` world: `provider` plus the `objects` export.
pub mod storage {
    provider_with_export!("storage-provider");

    pub use self::exports::instanode::provider::objects;
}

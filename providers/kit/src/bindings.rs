//! The contract's Rust bindings, generated once from `wit/` for every provider.
//!
//! The `provider` world is generated here in full: the `types`, every capability import and
//! the `provisioner` export. The extended worlds add one export each, so [`deploy`] and
//! [`storage`] generate only that export, with `types` taken from here (`with`): a
//! `ProviderError` is the same Rust type whichever world a provider is. A component's world
//! is the union of the exports its export macro brings in, so `deploy-provider` is
//! `provider` plus `deployer`, exactly as `wit/worlds.wit` defines it.
//!
//! The export macros are public (`pub_export_macro`) so that the kit's own macros can
//! export a type of the provider's crate; providers use those, never these directly.

wit_bindgen::generate!({
    world: "provider",
    path: "../../wit",
    pub_export_macro: true,
    export_macro_name: "export_provider_world",
    default_bindings_module: "instanode_provider_kit::bindings",
});

/// The `deployer` export of the `deploy-provider` world.
pub mod deploy {
    wit_bindgen::generate!({
        inline: "
            package instanode:kit;

            world deployer-export {
                export instanode:provider/deployer@0.3.0;
            }
        ",
        path: "../../wit",
        world: "deployer-export",
        with: {
            "instanode:provider/types@0.3.0": crate::bindings::instanode::provider::types,
        },
        pub_export_macro: true,
        export_macro_name: "export_deployer",
        default_bindings_module: "instanode_provider_kit::bindings::deploy",
    });
}

/// The `objects` export of the `storage-provider` world.
pub mod storage {
    wit_bindgen::generate!({
        inline: "
            package instanode:kit;

            world objects-export {
                export instanode:provider/objects@0.3.0;
            }
        ",
        path: "../../wit",
        world: "objects-export",
        with: {
            "instanode:provider/types@0.3.0": crate::bindings::instanode::provider::types,
        },
        pub_export_macro: true,
        export_macro_name: "export_objects",
        default_bindings_module: "instanode_provider_kit::bindings::storage",
    });
}

pub use deploy::exports::instanode::provider::deployer;
pub use storage::exports::instanode::provider::objects;

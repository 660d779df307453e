//! Host-side bindings generated from `wit/provider.wit`.

wasmtime::component::bindgen!({
    world: "provider",
    path: "../wit",
    imports: { default: async },
    exports: { default: async },
});

pub use self::instanode::provider::types;

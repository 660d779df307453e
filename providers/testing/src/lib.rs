//! A provider that misbehaves on request, so the host's sandbox can be tested against real
//! components. The resource `name` picks the behaviour:
//!
//! - `trap`: panics (a wasm trap);
//! - `loop`: spins forever (only the host's deadline stops it);
//! - `hog`: allocates without bound (only the host's memory limit stops it);
//! - `fail`: returns a backend-unavailable error;
//! - `bad-url`: returns an empty connection URL, which the host must reject;
//! - `kv`: writes, reads and lists its private key-value state, and reports what it read;
//! - anything else: succeeds with a dummy URL.

use instanode_provider_kit::kv;
use instanode_provider_kit::types::{
    CapabilityError, Info, ProviderError, ProvisionRequest, Provisioned, ResourceRef, UsageReport,
};
use instanode_provider_kit::{Provider, data_kind};

struct Testing;

impl Provider for Testing {
    fn describe() -> Info {
        Info {
            name: "testing".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kinds: vec![
                data_kind("db", "postgres", "DATABASE_URL"),
                data_kind("vector", "vector", "DATABASE_URL"),
                data_kind("test", "test", "TEST_URL"),
            ],
        }
    }

    fn provision(request: ProvisionRequest) -> Result<Provisioned, ProviderError> {
        match request.name.as_str() {
            "trap" => panic!("the testing provider was asked to trap"),
            "loop" => spin_forever(),
            "hog" => hog_memory(),
            "fail" => Err(ProviderError::BackendUnavailable("asked to fail".into())),
            "kv" => kv_round_trip(&request.resource_id),
            "bad-url" => Ok(Provisioned {
                connection_url: String::new(),
                internal_url: None,
                fields: vec![],
                state: String::new(),
            }),
            _ => Ok(Provisioned {
                connection_url: format!("test://{}", request.resource_id),
                internal_url: None,
                fields: vec![],
                state: request.resource_id,
            }),
        }
    }

    fn deprovision(_: ResourceRef) -> Result<(), ProviderError> {
        Ok(())
    }

    fn usage(_: ResourceRef) -> Result<UsageReport, ProviderError> {
        Ok(UsageReport {
            storage_bytes: 0,
            connections: 0,
            extra: vec![],
        })
    }

    // suspend, resume, maintain: the SDK's defaults, which do nothing; check: the default
    // says "testing provider has no backend".
}

instanode_provider_kit::export_provider!(Testing);

/// Stores the resource id under its own key, reads it back and lists the keys written so far.
fn kv_round_trip(resource_id: &str) -> Result<Provisioned, ProviderError> {
    let fail = |e: CapabilityError| ProviderError::Internal(format!("kv: {e:?}"));
    let key = format!("resource/{resource_id}");
    kv::set(&key, resource_id.as_bytes()).map_err(fail)?;
    let read = kv::get(&key).map_err(fail)?.unwrap_or_default();
    let keys = kv::list_keys("resource/", 100).map_err(fail)?;
    kv::delete("resource/absent").map_err(fail)?;
    Ok(Provisioned {
        connection_url: format!("test://{resource_id}"),
        internal_url: None,
        fields: vec![
            (
                "kv_read".into(),
                String::from_utf8_lossy(&read).into_owned(),
            ),
            ("kv_keys".into(), keys.len().to_string()),
        ],
        state: String::new(),
    })
}

fn spin_forever() -> ! {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

fn hog_memory() -> ! {
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    loop {
        // Touch every page so the allocation is real.
        chunks.push(std::hint::black_box(vec![1u8; 1 << 20]));
    }
}

//! What replacing a provider costs, and what calling one costs, for every shipped provider:
//! compile + validate + swap of a version never seen before (cold: nothing cached), of a
//! version compiled before (cached artifact), and the per-call overhead of a fresh sandboxed
//! instance (`describe()`, which touches no backend). Measured in-process through the host's
//! registry. Run with `./scripts/bench` (`INSTANODE_BENCH_ONLY=swap`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use instanode::app::App;
use instanode::config::Config;
use instanode_tests::{HostFiles, HostOptions, ProviderSpec, STATS_HEADER, Stats, component_bytes};

const COLD_SWAPS: usize = 3;
const CACHED_SWAPS: usize = 20;
const CALLS: usize = 2000;

/// The same component with a custom section appended: identical code, a new content hash,
/// so the host treats it as a version it has never compiled.
fn distinct(wasm: &[u8], tag: &str) -> Vec<u8> {
    let name = b"instanode-bench";
    let mut payload = vec![name.len() as u8];
    payload.extend_from_slice(name);
    payload.extend_from_slice(tag.as_bytes());
    let mut out = wasm.to_vec();
    out.push(0); // custom section id
    leb128(&mut out, payload.len());
    out.extend_from_slice(&payload);
    out
}

fn leb128(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

const COMMAND: &str = "./scripts/bench provider_swap";

/// Stats of sequential samples (their sum is the wall time).
fn sequential(samples: Vec<Duration>) -> Stats {
    let wall = samples.iter().sum();
    Stats::new(samples, wall)
}

#[tokio::main]
async fn main() {
    let only = std::env::var("INSTANODE_BENCH_ONLY").unwrap_or_default();
    if !only.is_empty() && !only.split(',').any(|s| s == "swap" || s == "provider_swap") {
        return;
    }
    let providers = vec![
        ProviderSpec::postgres(&["db", "vector"]),
        ProviderSpec::redis(),
        ProviderSpec::mongo(),
        ProviderSpec::nats(),
        ProviderSpec::spaces(),
        ProviderSpec::deploy(),
        ProviderSpec::example(None),
    ];
    let names: Vec<(&str, &str)> = providers.iter().map(|p| (p.name, p.component)).collect();
    let options = HostOptions {
        providers,
        ..HostOptions::default()
    };
    let files = HostFiles::create(&options, 0).await.expect("host files");
    let config = Config::load(Some(&files.config_path())).expect("bench config");
    let app = App::start(&config).await.expect("host starts");

    println!("{STATS_HEADER}");
    for (name, component) in names {
        let original = component_bytes(component);

        let mut cold = Vec::new();
        for n in 0..COLD_SWAPS {
            let wasm = distinct(&original, &format!("cold-{n}-{}", uuid::Uuid::new_v4()));
            let swapped = app
                .registry
                .replace(name, Arc::from(wasm), "bench".into())
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(
                !swapped.cached,
                "{name}: a new version was found in the cache"
            );
            cold.push(swapped.elapsed);
        }

        // Two versions, both compiled once: every swap between them reuses an artifact.
        let pair = [original.clone(), distinct(&original, "cached")];
        for wasm in &pair {
            app.registry
                .replace(name, Arc::from(wasm.clone()), "bench".into())
                .await
                .unwrap();
        }
        let mut cached = Vec::new();
        for n in 0..CACHED_SWAPS {
            let started = Instant::now();
            let swapped = app
                .registry
                .replace(name, Arc::from(pair[n % 2].clone()), "bench".into())
                .await
                .unwrap();
            assert!(swapped.cached && !swapped.unchanged(), "{name}");
            cached.push(started.elapsed());
        }

        let live = app.registry.get(name).expect("live provider");
        for _ in 0..100 {
            live.describe("warmup").await.unwrap();
        }
        let mut calls = Vec::with_capacity(CALLS);
        for _ in 0..CALLS {
            let started = Instant::now();
            live.describe("bench").await.unwrap();
            calls.push(started.elapsed());
        }

        let kib = original.len() / 1024;
        let rows = [
            sequential(cold).row(
                &format!(
                    "hot-swap `{name}` ({kib} KiB) to a new version: compile + validate + swap"
                ),
                1,
                COMMAND,
            ),
            sequential(cached).row(
                &format!("hot-swap `{name}` to a version compiled before"),
                1,
                COMMAND,
            ),
            sequential(calls).row(
                &format!("call `{name}`.describe(): fresh sandboxed instance per call"),
                1,
                COMMAND,
            ),
        ];
        for row in rows {
            println!("{row}");
        }
    }
}

//! The bare cost of calling a provider component: a fresh sandboxed instance per call
//! (store, instance, call, teardown), measured in-process through the host's registry.
//! Run with `./scripts/bench component_call`.

use std::time::{Duration, Instant};

use instanode::app::App;
use instanode::config::Config;
use instanode_tests::{HostFiles, HostOptions, ProviderSpec, STATS_HEADER, Stats};

const CALLS: usize = 5000;

#[tokio::main]
async fn main() {
    let options = HostOptions {
        providers: vec![ProviderSpec::testing(&["test"])],
        ..HostOptions::default()
    };
    let files = HostFiles::create(&options, 0).await.expect("host files");
    let config = Config::load(Some(&files.config_path())).expect("bench config");
    let app = App::start(&config).await.expect("host starts");
    let provider = app.registry.for_kind("test").expect("testing provider");

    for _ in 0..200 {
        provider.check("warmup").await.unwrap().unwrap();
    }
    let mut samples = Vec::with_capacity(CALLS);
    let started = Instant::now();
    for _ in 0..CALLS {
        let call = Instant::now();
        provider.check("bench").await.unwrap().unwrap();
        samples.push(call.elapsed());
    }
    let sequential = Stats::new(samples, started.elapsed());

    let started = Instant::now();
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let provider = provider.clone();
            tokio::spawn(async move {
                let mut samples: Vec<Duration> = Vec::with_capacity(CALLS / 4);
                for _ in 0..CALLS / 4 {
                    let call = Instant::now();
                    provider.check("bench").await.unwrap().unwrap();
                    samples.push(call.elapsed());
                }
                samples
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    let parallel = Stats::new(all, started.elapsed());

    println!("{STATS_HEADER}");
    let command = "./scripts/bench component_call";
    let measurement =
        "component call overhead: check() on a trivial provider, fresh instance per call";
    println!("{}", sequential.row(measurement, 1, command));
    println!("{}", parallel.row(measurement, 4, command));
}

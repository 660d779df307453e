//! The bare cost of calling a provider component: a fresh sandboxed instance per call
//! (store, instance, call, teardown), measured in-process through the host's registry.
//! Run with `./scripts/bench`.

use std::time::{Duration, Instant};

use instanode::app::App;
use instanode::config::Config;
use instanode_tests::{STATS_HEADER, Stats, superuser, superuser_url, with_database};

const CALLS: usize = 5000;

fn config(dir: &std::path::Path, metadata_url: &str) -> Config {
    let providers =
        std::env::var("INSTANODE_TEST_PROVIDERS_DIR").expect("run through ./scripts/bench");
    let toml = format!(
        "data_dir = {dir:?}\n[metadata]\nurl = {metadata_url:?}\n[secrets]\nseal_key = \"{}\"\njwt_secret = \"bench-jwt-secret-0123456789\"\n\
         [providers.testing]\ncomponent = \"{providers}/testing.wasm\"\nkinds = [\"test\"]\n",
        "cd".repeat(32),
    );
    let path = dir.join("instanode.toml");
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(&path, toml).unwrap();
    Config::load(Some(&path)).expect("bench config")
}

#[tokio::main]
async fn main() {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let database = format!("meta_bench_{id}");
    sqlx::query(&format!("CREATE DATABASE \"{database}\""))
        .execute(&mut superuser("postgres").await)
        .await
        .unwrap();
    let dir = std::path::PathBuf::from(std::env::var("INSTANODE_TEST_DATA_DIR").unwrap())
        .join("bench")
        .join(&id);
    let app = App::start(&config(&dir, &with_database(&superuser_url(), &database)))
        .await
        .expect("host starts");
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

    println!("\nComponent call overhead (fresh instance per call, trivial export)\n");
    println!("{STATS_HEADER}");
    println!("{}", sequential.row("check(), one caller"));
    println!("{}", parallel.row("check(), 4 concurrent callers"));
}

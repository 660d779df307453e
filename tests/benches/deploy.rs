//! Deploys as an agent sees them: from uploading a tarball to the first 200 from its URL
//! (base image cached), and what the host's proxy costs next to calling the container
//! directly at the same concurrency. Run with `./scripts/bench`; `INSTANODE_BENCH_ONLY`
//! must include `deploy` when set; `INSTANODE_BENCH_DEPLOYS` sets the upload sample (20).

use std::time::{Duration, Instant};

use instanode_tests::deploy::{deploy, new_owner, static_site, through_proxy, wait_for};
use instanode_tests::{HostOptions, ProviderSpec, STATS_HEADER, Stats, TestHost};
use reqwest::Method;

const WORKERS: usize = 16;
const REQUESTS_PER_WORKER: usize = 250;

/// Upload → healthy → first 200 through the proxy, one app at a time.
async fn upload_to_first_answer(host: &TestHost, n: usize) -> Stats {
    let mut samples = Vec::with_capacity(n);
    let started = Instant::now();
    for i in 0..n {
        let jwt = new_owner(host).await;
        let body = format!("bench {i}");
        let began = Instant::now();
        let reply = deploy(host, &jwt, static_site(&body), &[("name", "bench")]).await;
        assert_eq!(reply.status.as_u16(), 202, "{}", reply.body);
        let id = reply.body["id"].as_str().expect("id").to_string();
        let url = reply.body["url"].as_str().expect("url").to_string();
        wait_for(host, &id, 1, &["healthy"], Duration::from_secs(120)).await;
        loop {
            let (status, text) = through_proxy(host, Method::GET, &url, None, None).await;
            if status == 200 && text.contains(&body) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        samples.push(began.elapsed());
        let deleted = host.delete(&format!("/api/v1/deployments/{id}")).await;
        assert_eq!(deleted.status.as_u16(), 200, "{}", deleted.body);
    }
    Stats::new(samples, started.elapsed())
}

/// `WORKERS` concurrent clients, each sending `REQUESTS_PER_WORKER` GETs to `target` with
/// `host_header`.
async fn load(target: &str, host_header: Option<&str>) -> Stats {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(WORKERS)
        .build()
        .expect("client");
    let started = Instant::now();
    let runs = (0..WORKERS).map(|_| {
        let client = client.clone();
        async move {
            let mut samples = Vec::with_capacity(REQUESTS_PER_WORKER);
            for _ in 0..REQUESTS_PER_WORKER {
                let mut request = client.get(target);
                if let Some(host) = host_header {
                    request = request.header("host", host);
                }
                let began = Instant::now();
                let response = request.send().await.expect("answer");
                assert_eq!(response.status().as_u16(), 200);
                response.bytes().await.expect("body");
                samples.push(began.elapsed());
            }
            samples
        }
    });
    let samples = futures::future::join_all(runs)
        .await
        .into_iter()
        .flatten()
        .collect();
    Stats::new(samples, started.elapsed())
}

fn mean(stats: &Stats) -> f64 {
    stats.samples.iter().map(Duration::as_secs_f64).sum::<f64>() / stats.samples.len() as f64
}

#[tokio::main]
async fn main() {
    let only = std::env::var("INSTANODE_BENCH_ONLY").unwrap_or_default();
    if !only.is_empty() && !only.split(',').any(|k| k.trim() == "deploy") {
        return;
    }
    let n: usize = std::env::var("INSTANODE_BENCH_DEPLOYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let host = TestHost::start(HostOptions {
        providers: vec![ProviderSpec::deploy()],
        extra: "rate_limit_per_minute = 0".into(),
        ..HostOptions::default()
    })
    .await;

    // Warm the engine's build cache path once.
    upload_to_first_answer(&host, 1).await;
    let mut rows = vec![
        upload_to_first_answer(&host, n)
            .await
            .row("POST /deploy/new (busybox site) → first 200 from its URL, sequential"),
    ];

    let jwt = new_owner(&host).await;
    let reply = deploy(&host, &jwt, static_site("proxied"), &[("name", "target")]).await;
    let id = reply.body["id"].as_str().expect("id").to_string();
    let url = reply.body["url"].as_str().expect("url").to_string();
    wait_for(&host, &id, 1, &["healthy"], Duration::from_secs(120)).await;
    let upstream: String =
        sqlx::query_scalar("SELECT upstream FROM deployments WHERE status = 'healthy'")
            .fetch_one(&mut host.metadata().await)
            .await
            .expect("the app's upstream");
    let authority = url.trim_start_matches("http://").to_string();
    // Warm both paths.
    load(&format!("http://{upstream}/"), None).await;
    load(&format!("{}/", host.url), Some(&authority)).await;
    let direct = load(&format!("http://{upstream}/"), None).await;
    let proxied = load(&format!("{}/", host.url), Some(&authority)).await;
    let ratio = mean(&proxied) / mean(&direct);
    rows.push(direct.row(&format!("GET the container directly, {WORKERS} concurrent")));
    rows.push(proxied.row(&format!(
        "GET through the host proxy (Host header), {WORKERS} concurrent"
    )));

    println!("\nDeploys (busybox base image cached; one app at a time)\n");
    println!("{STATS_HEADER}");
    for row in rows {
        println!("{row}");
    }
    println!(
        "\nProxy overhead: mean latency through the proxy is {ratio:.2}× the direct container's at {WORKERS} concurrent clients."
    );
}

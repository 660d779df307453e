//! Deploys as an agent sees them: from uploading a tarball to the first 200 from its URL
//! (base image cached), one at a time and 16 at once; and what the host's proxy costs next
//! to calling the container directly, and next to Debian's nginx in front of the same
//! container, at the same concurrency. The same on Docker Swarm (an app of two tasks):
//! upload to first answer, a rolling redeploy, and how many requests of a steady client
//! failed during the redeploys. Over HTTPS (a pebble-issued wildcard certificate): time to the
//! first certificate, and GETs over kept-alive and freshly handshaken TLS connections. Run with
//! `./scripts/bench deploy`;
//! `INSTANODE_BENCH_DEPLOYS` sets the sample per scenario (16; a quarter of it on Swarm).

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use instanode::api::schema::{DeploymentAnswer, DeploymentDeleted};
use instanode_tests::acme::{Pebble, PebbleOptions};
use instanode_tests::deploy::{
    deploy, new_owner, static_site, through_proxy, try_through_proxy, wait_for,
};
use instanode_tests::{
    HostOptions, ProviderSpec, STATS_HEADER, Stats, TestHost, figure_row, free_port,
};
use reqwest::Method;

const WORKERS: usize = 16;
const REQUESTS_PER_WORKER: usize = 250;
const COMMAND: &str = "./scripts/bench deploy";

/// Upload → healthy → first 200 through the proxy, then the app is deleted.
async fn one_deploy(host: &TestHost, i: usize) -> Duration {
    let jwt = new_owner(host).await;
    let body = format!("bench {i}");
    let began = Instant::now();
    let reply = deploy(host, &jwt, static_site(&body), &[("name", "bench")]).await;
    let answer: DeploymentAnswer = reply.expect(202);
    let id = answer.id.to_string();
    let url = answer.url.expect("url");
    wait_for(host, &id, 1, &["healthy"], Duration::from_secs(180)).await;
    loop {
        let (status, text) = through_proxy(host, Method::GET, &url, None, None).await;
        if status == 200 && text.contains(&body) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = began.elapsed();
    let deleted = host.delete(&format!("/api/v1/deployments/{id}")).await;
    deleted.expect::<DeploymentDeleted>(200);
    elapsed
}

/// `n` deploys by `workers` concurrent agents.
async fn upload_to_first_answer(host: &TestHost, workers: usize, n: usize) -> Stats {
    let started = Instant::now();
    let runs = (0..workers).map(|w| async move {
        let mut samples = Vec::new();
        for i in (w..n).step_by(workers) {
            samples.push(one_deploy(host, i).await);
        }
        samples
    });
    Stats::of_workers(runs, started).await
}

/// A running nginx, stopped (master and workers) on drop.
struct Nginx {
    child: tokio::process::Child,
    config: std::path::PathBuf,
    error_log: std::path::PathBuf,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // Killing only the master would leave its workers running: ask it to stop them.
        let stopped = std::process::Command::new("nginx")
            .arg("-e")
            .arg(&self.error_log)
            .arg("-c")
            .arg(&self.config)
            .args(["-s", "stop"])
            .status()
            .is_ok_and(|s| s.success());
        if !stopped {
            let _ = self.child.start_kill();
        }
    }
}

/// Debian's nginx as a reverse proxy to `upstream` (keep-alive to it, as the host keeps),
/// on a free port, with its files under `dir`.
fn start_nginx(dir: &std::path::Path, upstream: &str) -> (Nginx, String) {
    std::fs::create_dir_all(dir).expect("nginx dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let config = format!(
        "worker_processes auto;\npid {dir}/nginx.pid;\nerror_log {dir}/error.log;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {dir}/body;\n  proxy_temp_path {dir}/proxy;\n\
           fastcgi_temp_path {dir}/fastcgi;\n  uwsgi_temp_path {dir}/uwsgi;\n  scgi_temp_path {dir}/scgi;\n\
           upstream app {{ server {upstream}; keepalive 32; }}\n\
           server {{\n    listen 127.0.0.1:{port};\n    location / {{\n\
               proxy_pass http://app;\n      proxy_http_version 1.1;\n\
               proxy_set_header Connection \"\";\n      proxy_set_header Host $host;\n    }}\n  }}\n}}\n",
        dir = dir.display()
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, config).expect("nginx config");
    let child = tokio::process::Command::new("nginx")
        .args(["-g", "daemon off;", "-e"])
        .arg(dir.join("error.log"))
        .arg("-c")
        .arg(&path)
        .stdout(Stdio::null())
        .spawn()
        .expect("nginx starts (scripts/bench installs nginx-light)");
    let nginx = Nginx {
        child,
        config: path,
        error_log: dir.join("error.log"),
    };
    (nginx, format!("http://127.0.0.1:{port}/"))
}

/// `WORKERS` concurrent clients, each sending `REQUESTS_PER_WORKER` GETs to `target` with
/// `host_header`, over one pool of kept-alive connections.
async fn load(target: &str, host_header: Option<&str>) -> Stats {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(WORKERS)
        .build()
        .expect("client");
    load_with(|| client.clone(), target, host_header).await
}

/// [`load`], each request sent with the client `client_for` gives.
async fn load_with(
    client_for: impl Fn() -> reqwest::Client,
    target: &str,
    host_header: Option<&str>,
) -> Stats {
    let started = Instant::now();
    let runs = (0..WORKERS).map(|_| async {
        let mut samples = Vec::with_capacity(REQUESTS_PER_WORKER);
        for _ in 0..REQUESTS_PER_WORKER {
            let mut request = client_for().get(target);
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
    });
    Stats::of_workers(runs, started).await
}

fn mean(stats: &Stats) -> f64 {
    stats.samples.iter().map(Duration::as_secs_f64).sum::<f64>() / stats.samples.len() as f64
}

/// `p50 a/b (mean a/b)` as a figure for the table.
fn ratio(a: &Stats, b: &Stats) -> String {
    let p50 = |s: &Stats| s.percentile(50.0).as_secs_f64();
    format!("{:.2}× (mean {:.2}×)", p50(a) / p50(b), mean(a) / mean(b))
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
        .unwrap_or(16);
    let host = TestHost::start(HostOptions {
        providers: vec![ProviderSpec::deploy()],
        extra: "rate_limit_per_minute = 0".into(),
        ..HostOptions::default()
    })
    .await;

    // Warm the engine's build cache path once.
    upload_to_first_answer(&host, 1, 1).await;
    let measurement = "POST /deploy/new (busybox site) → healthy → first 200 from its URL";
    let mut rows = vec![
        upload_to_first_answer(&host, 1, n)
            .await
            .row(measurement, 1, COMMAND),
        upload_to_first_answer(&host, WORKERS, n)
            .await
            .row(measurement, WORKERS, COMMAND),
    ];

    let jwt = new_owner(&host).await;
    let reply = deploy(&host, &jwt, static_site("proxied"), &[("name", "target")]).await;
    let answer: DeploymentAnswer = reply.json();
    let id = answer.id.to_string();
    let url = answer.url.expect("url");
    wait_for(&host, &id, 1, &["healthy"], Duration::from_secs(120)).await;
    let upstream: String =
        sqlx::query_scalar("SELECT upstream FROM deployments WHERE status = 'healthy'")
            .fetch_one(&mut host.metadata().await)
            .await
            .expect("the app's upstream");
    let authority = url.trim_start_matches("http://").to_string();
    let (_nginx, nginx_url) = start_nginx(&host.dir.join("nginx"), &upstream);
    let direct_url = format!("http://{upstream}/");
    let host_url = format!("{}/", host.url);
    // Warm every path (nginx may need a moment to listen).
    tokio::time::sleep(Duration::from_millis(300)).await;
    load(&direct_url, None).await;
    load(&host_url, Some(&authority)).await;
    load(&nginx_url, Some(&authority)).await;
    let direct = load(&direct_url, None).await;
    let proxied = load(&host_url, Some(&authority)).await;
    let nginx = load(&nginx_url, Some(&authority)).await;
    rows.push(direct.row("GET the container directly", WORKERS, COMMAND));
    rows.push(proxied.row("GET through the host's proxy", WORKERS, COMMAND));
    rows.push(nginx.row(
        "GET through nginx (Debian) in front of the same container",
        WORKERS,
        COMMAND,
    ));
    rows.push(figure_row(
        "host proxy latency ÷ direct, p50",
        &WORKERS.to_string(),
        &ratio(&proxied, &direct),
        COMMAND,
    ));
    rows.push(figure_row(
        "nginx latency ÷ direct, p50",
        &WORKERS.to_string(),
        &ratio(&nginx, &direct),
        COMMAND,
    ));
    rows.push(figure_row(
        "host proxy latency ÷ nginx, p50",
        &WORKERS.to_string(),
        &ratio(&proxied, &nginx),
        COMMAND,
    ));

    drop(host);
    rows.extend(https_rows(&proxied).await);
    rows.extend(swarm_rows(n.div_ceil(4).max(2)).await);

    println!("{STATS_HEADER}");
    for row in rows {
        println!("{row}");
    }
}

/// The HTTPS rows: a host with a TLS listener and a wildcard certificate for its apps from
/// pebble (DNS-01 through the hook), from start to the certificate served; then GETs of an
/// app over kept-alive TLS connections, and with a new client (a full handshake) per request.
async fn https_rows(plain: &Stats) -> Vec<String> {
    let (http_port, https_port) = (free_port().unwrap(), free_port().unwrap());
    let pebble = Pebble::start(PebbleOptions {
        http_port,
        validity_secs: 3600,
        blocked: Vec::new(),
    })
    .await;
    let started = Instant::now();
    let host = TestHost::start(HostOptions {
        port: Some(http_port),
        providers: vec![ProviderSpec::deploy()],
        extra: format!(
            "rate_limit_per_minute = 0\n{}",
            pebble.host_config(https_port, "apps.test", true)
        ),
        ..HostOptions::default()
    })
    .await;
    let jwt = new_owner(&host).await;
    let answer: DeploymentAnswer = deploy(&host, &jwt, static_site("over tls"), &[("name", "tls")])
        .await
        .expect(202);
    let url = answer.url.expect("url");
    wait_for(
        &host,
        &answer.id.to_string(),
        1,
        &["healthy"],
        Duration::from_secs(120),
    )
    .await;
    let name = url::Url::parse(&url)
        .unwrap()
        .host_str()
        .unwrap()
        .to_string();
    let root = reqwest::Certificate::from_pem(pebble.issuing_root.as_bytes()).unwrap();
    let client = |pooled: usize| {
        reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(root.clone())
            .resolve(
                &name,
                std::net::SocketAddr::from(([127, 0, 0, 1], https_port)),
            )
            .pool_max_idle_per_host(pooled)
            .build()
            .expect("client")
    };
    while !matches!(client(0).get(&url).send().await, Ok(r) if r.status().is_success()) {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no certificate"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let to_certificate = started.elapsed();
    let shared = client(WORKERS);
    load_with(|| shared.clone(), &url, None).await;
    let kept = load_with(|| shared.clone(), &url, None).await;
    let fresh = load_with(|| client(0), &url, None).await;
    vec![
        figure_row(
            "HTTPS: host start → deploy → wildcard certificate from pebble (DNS-01 hook) served",
            "1",
            &format!("{:.0} ms", to_certificate.as_secs_f64() * 1000.0),
            COMMAND,
        ),
        kept.row(
            "HTTPS: GET through the host's proxy, kept-alive TLS connections",
            WORKERS,
            COMMAND,
        ),
        fresh.row(
            "HTTPS: GET through the host's proxy, a new client and full handshake each",
            WORKERS,
            COMMAND,
        ),
        figure_row(
            "HTTPS kept-alive latency ÷ plain HTTP through the proxy, p50",
            &WORKERS.to_string(),
            &ratio(&kept, plain),
            COMMAND,
        ),
    ]
}

/// The Swarm rows: `n` deploys of a two-task app one at a time, then `n` rolling
/// redeploys of one app under a steady client, counting the requests that failed.
async fn swarm_rows(n: usize) -> Vec<String> {
    let host = Arc::new(
        TestHost::start(HostOptions {
            providers: vec![ProviderSpec::swarm(2)],
            extra: "rate_limit_per_minute = 0".into(),
            ..HostOptions::default()
        })
        .await,
    );
    upload_to_first_answer(&host, 1, 1).await;
    let mut rows = vec![upload_to_first_answer(&host, 1, n).await.row(
        "Swarm, 2 tasks: POST /deploy/new (busybox site) → healthy → first 200 from its URL",
        1,
        COMMAND,
    )];

    let jwt = new_owner(&host).await;
    let answer: DeploymentAnswer = deploy(&host, &jwt, static_site("v0"), &[("name", "rolling")])
        .await
        .expect(202);
    let id = answer.id.to_string();
    let url = answer.url.expect("url");
    wait_for(&host, &id, 1, &["healthy"], Duration::from_secs(180)).await;

    let stop = Arc::new(AtomicBool::new(false));
    let (sent, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let client = {
        let (host, url, stop) = (host.clone(), url.clone(), stop.clone());
        let (sent, failed) = (sent.clone(), failed.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                sent.fetch_add(1, Ordering::Relaxed);
                let answer = try_through_proxy(&host, Method::GET, &url, None, None).await;
                if !matches!(answer, Ok((200, _))) {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    let started = Instant::now();
    let mut samples = Vec::new();
    for generation in 2..n + 2 {
        let body = format!("v{generation}");
        let began = Instant::now();
        deploy(
            &host,
            &jwt,
            static_site(&body),
            &[("name", "rolling"), ("redeploy", "true")],
        )
        .await
        .expect::<DeploymentAnswer>(202);
        wait_for(
            &host,
            &id,
            generation as u64,
            &["healthy"],
            Duration::from_secs(180),
        )
        .await;
        samples.push(began.elapsed());
    }
    let wall = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    client.await.expect("the steady client");
    rows.push(Stats::new(samples, wall).row(
        "Swarm, 2 tasks: rolling redeploy, POST → new generation healthy",
        1,
        COMMAND,
    ));
    rows.push(figure_row(
        "Swarm, 2 tasks: requests of a steady client failed during those redeploys",
        "1",
        &format!(
            "{} of {}",
            failed.load(Ordering::Relaxed),
            sent.load(Ordering::Relaxed)
        ),
        COMMAND,
    ));
    rows
}

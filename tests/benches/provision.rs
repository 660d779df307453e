//! Provisioning latency as an agent sees it: from `POST /<kind>/new` to the first
//! successful query, command or acknowledged publish through the returned URL, over real HTTP and a real client.
//! Run with `./scripts/bench`; `INSTANODE_BENCH_N` sets the sequential sample size (200)
//! and `INSTANODE_BENCH_WARM_POOL` the provider's warm pool per kind (64);
//! `INSTANODE_BENCH_ONLY=queue,cache` picks scenarios by kind.

use std::time::{Duration, Instant};

use instanode_tests::{HostOptions, ProviderSpec, STATS_HEADER, Stats, TestHost, superuser};
use serde_json::json;
use sqlx::{Connection, PgConnection};

/// One provision, timed until the tenant's first query (or command) succeeds.
async fn provision_and_query(host: &TestHost, path: &str, name: &str) -> Duration {
    let started = Instant::now();
    let reply = host.post_json(path, json!({"name": name})).await;
    assert_eq!(reply.status.as_u16(), 201, "{}", reply.body);
    let url = reply.body["connection_url"]
        .as_str()
        .expect("connection_url");
    if url.starts_with("mongodb://") {
        let client = mongodb::Client::with_uri_str(url).await.expect("mongo url");
        let database = client
            .default_database()
            .expect("the URL names the database");
        // An authenticated command: the tenant's login really works.
        database
            .list_collection_names()
            .await
            .expect("first command");
        return started.elapsed();
    }
    if url.starts_with("nats://") {
        let creds = reply.body["credentials"]["creds_file"]
            .as_str()
            .expect("creds_file");
        let client = async_nats::ConnectOptions::with_credentials(creds)
            .expect("creds parse")
            .connect(url)
            .await
            .expect("tenant connects");
        let js = async_nats::jetstream::new(client);
        js.create_stream(async_nats::jetstream::stream::Config {
            name: "BENCH".into(),
            subjects: vec!["bench.>".into()],
            ..Default::default()
        })
        .await
        .expect("stream created");
        js.publish("bench.1", "hello".into())
            .await
            .expect("publish sent")
            .await
            .expect("publish acknowledged");
        return started.elapsed();
    }
    if let Some(presign_url) = reply.body["presign_url"].as_str() {
        let path = &presign_url[presign_url.find("/storage/").expect("presign path")..];
        let signed = host
            .post_json(path, json!({"operation": "PUT", "key": "first.txt"}))
            .await;
        assert_eq!(signed.status.as_u16(), 200, "{}", signed.body);
        let put = host
            .http
            .put(signed.body["url"].as_str().expect("url"))
            .body("hello")
            .send()
            .await
            .expect("upload sent");
        assert!(
            put.status().is_success(),
            "upload refused: {}",
            put.status()
        );
        return started.elapsed();
    }
    if url.starts_with("redis://") {
        let mut conn = redis::Client::open(url)
            .expect("redis url")
            .get_multiplexed_async_connection()
            .await
            .expect("tenant connects");
        let pong: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .expect("first command");
        assert_eq!(pong, "PONG");
        return started.elapsed();
    }
    let mut conn = PgConnection::connect(url).await.expect("tenant connects");
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&mut conn)
        .await
        .expect("first query");
    assert_eq!(one, 1);
    let elapsed = started.elapsed();
    conn.close().await.ok();
    elapsed
}

async fn sequential(host: &TestHost, path: &str, n: usize) -> Stats {
    let started = Instant::now();
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        samples.push(provision_and_query(host, path, &format!("bench-{i}")).await);
    }
    Stats::new(samples, started.elapsed())
}

async fn concurrent(host: &TestHost, path: &str, workers: usize, per_worker: usize) -> Stats {
    let started = Instant::now();
    let runs = (0..workers).map(|w| async move {
        let mut samples = Vec::with_capacity(per_worker);
        for i in 0..per_worker {
            samples.push(provision_and_query(host, path, &format!("bench-{w}-{i}")).await);
        }
        samples
    });
    let samples = futures::future::join_all(runs)
        .await
        .into_iter()
        .flatten()
        .collect();
    Stats::new(samples, started.elapsed())
}

/// `total` small JSON deliveries to one receiver from `senders` concurrent senders, each
/// timed until the host answers 200 (stored).
async fn webhook_ingest(host: &TestHost, senders: usize, total: usize) -> Stats {
    let body = host.provision("webhook", "ingest").await;
    let url = body["receive_url"]
        .as_str()
        .expect("receive_url")
        .to_string();
    let per_sender = total / senders;
    let started = Instant::now();
    let runs = (0..senders).map(|s| {
        let url = url.clone();
        async move {
            let mut samples = Vec::with_capacity(per_sender);
            for i in 0..per_sender {
                let sent = Instant::now();
                let reply = host
                    .http
                    .post(&url)
                    .header("X-Event", "push")
                    .json(&json!({"sender": s, "n": i, "payload": "x".repeat(512)}))
                    .send()
                    .await
                    .expect("delivery sent");
                assert_eq!(reply.status().as_u16(), 200);
                samples.push(sent.elapsed());
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

/// Waits until the provider's warm pools hold `want` databases per kind (or 3 minutes pass).
async fn wait_for_warm_pool(want: i64) {
    let mut admin = superuser("postgres").await;
    let deadline = Instant::now() + Duration::from_secs(180);
    while Instant::now() < deadline {
        let ready: i64 = sqlx::query_scalar(
            "SELECT least(
                (SELECT count(*) FROM pg_database WHERE starts_with(datname::text, 'instanode_pool_db_')),
                (SELECT count(*) FROM pg_database WHERE starts_with(datname::text, 'instanode_pool_vector_')))",
        )
        .fetch_one(&mut admin)
        .await
        .expect("pool count");
        if ready >= want {
            // Start every scenario from a clean state: filling the pool writes a lot of WAL,
            // and a checkpoint it triggers would otherwise land inside the measurement.
            sqlx::query("CHECKPOINT")
                .execute(&mut admin)
                .await
                .expect("checkpoint");
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("INSTANODE_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let pool: i64 = std::env::var("INSTANODE_BENCH_WARM_POOL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let postgres =
        ProviderSpec::postgres(&["db", "vector"]).setting("warm_pool", &pool.to_string());
    let host = TestHost::start(HostOptions {
        providers: vec![
            postgres,
            ProviderSpec::redis(),
            ProviderSpec::mongo(),
            ProviderSpec::nats(),
            ProviderSpec::spaces(),
        ],
        // The ingest scenario sends from one address far faster than any client would.
        extra: "rate_limit_per_minute = 0".into(),
        ..HostOptions::default()
    })
    .await;
    // `INSTANODE_BENCH_ONLY=queue,cache` runs only the scenarios of those kinds.
    let only = std::env::var("INSTANODE_BENCH_ONLY").unwrap_or_default();
    let wanted = |kind: &str| only.is_empty() || only.split(',').any(|k| k.trim() == kind);
    let mut rows = vec![];
    if wanted("db") || wanted("vector") {
        wait_for_warm_pool(pool).await;
        // Warm the client and server paths once.
        provision_and_query(&host, "/db/new", "warmup").await;
    }
    if wanted("db") {
        wait_for_warm_pool(pool).await;
        rows.push(
            sequential(&host, "/db/new", n)
                .await
                .row("POST /db/new → first query, sequential"),
        );
    }
    if wanted("vector") {
        wait_for_warm_pool(pool).await;
        rows.push(
            sequential(&host, "/vector/new", n / 2)
                .await
                .row("POST /vector/new → first query, sequential"),
        );
    }
    if wanted("db") {
        wait_for_warm_pool(pool).await;
        rows.push(
            concurrent(&host, "/db/new", 8, n / 8)
                .await
                .row("POST /db/new → first query, 8 concurrent"),
        );
    }
    let others = [
        ("cache", "POST /cache/new → first command, sequential"),
        ("nosql", "POST /nosql/new → first command, sequential"),
        (
            "queue",
            "POST /queue/new → first acknowledged JetStream publish, sequential",
        ),
        (
            "storage",
            "POST /storage/new → first presigned PUT stored, sequential",
        ),
    ];
    for (kind, scenario) in others {
        if wanted(kind) {
            rows.push(
                sequential(&host, &format!("/{kind}/new"), n)
                    .await
                    .row(scenario),
            );
        }
    }

    if wanted("webhook") {
        rows.push(
            webhook_ingest(&host, 64, n * 10)
                .await
                .row("webhook ingest: POST to the receive URL, 64 concurrent senders"),
        );
    }

    println!(
        "\nProvisioning latency (HTTP request to the tenant's first successful query; warm pool {pool} per kind)\n"
    );
    println!("{STATS_HEADER}");
    for row in rows {
        println!("{row}");
    }
}

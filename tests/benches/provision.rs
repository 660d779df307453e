//! Provisioning latency as an agent sees it: from `POST /<kind>/new` to the first
//! successful query, command, acknowledged publish, stored upload or stored delivery through
//! the returned URL, over real HTTP and a real client; one caller and 16 at once, then all
//! kinds mixed at 16, webhook ingest at 64 senders, the dashboard's pages for a signed-in
//! team, and the host's memory.
//! Run with `./scripts/bench provision [kinds]` (kinds: db, vector, cache, nosql, queue,
//! storage, webhook, mixed, ingest, dashboard); `INSTANODE_BENCH_N` sets the sample per scenario (96)
//! and `INSTANODE_BENCH_WARM_POOL` the Postgres provider's warm pool per kind (128).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use instanode::api::schema::{Created, Presigned};
use instanode_tests::{
    HostOptions, ProviderFields, ProviderSpec, STATS_HEADER, Stats, TestHost, figure_row,
    rss_kib_of, superuser,
};
use serde_json::json;
use sqlx::{Connection, PgConnection};

/// One provision, timed until the tenant's first query (or command) succeeds.
async fn provision_and_query(host: &TestHost, path: &str, name: &str) -> Duration {
    let started = Instant::now();
    let created: Created = host
        .post_json(path, json!({"name": name}))
        .await
        .expect(201);
    let url = created.connection_url.as_str();
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
        let creds = created.field("credentials.creds_file");
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
    if let Some(presign_url) = created.presign_url.as_deref() {
        let path = &presign_url[presign_url.find("/storage/").expect("presign path")..];
        let signed: Presigned = host
            .post_json(path, json!({"operation": "PUT", "key": "first.txt"}))
            .await
            .expect(200);
        let put = host
            .http
            .put(signed.url)
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
    if let Some(receive_url) = created.provider_fields.get("receive_url") {
        let receive_url = receive_url.as_str().expect("receive_url");
        let stored = host
            .http
            .post(receive_url)
            .json(&json!({"hello": "world"}))
            .send()
            .await
            .expect("delivery sent");
        assert_eq!(stored.status().as_u16(), 200, "first delivery refused");
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

/// `total` provisions of `kinds` (taken in turn) by `workers` concurrent callers.
async fn provisions(host: &TestHost, kinds: &[&str], workers: usize, total: usize) -> Stats {
    let started = Instant::now();
    let runs = (0..workers).map(|w| async move {
        let mut samples = Vec::with_capacity(total / workers);
        for i in 0..total / workers {
            let kind = kinds[(w + i) % kinds.len()];
            let path = format!("/{kind}/new");
            samples.push(provision_and_query(host, &path, &format!("bench-{w}-{i}")).await);
        }
        samples
    });
    Stats::of_workers(runs, started).await
}

/// `total` loads of a dashboard page by `workers` concurrent browsers of one team, each
/// timed until the whole HTML page has arrived.
async fn dashboard_page(
    host: &TestHost,
    cookie: &str,
    path: &str,
    workers: usize,
    total: usize,
) -> Stats {
    let started = Instant::now();
    let url = format!("{}{path}", host.url);
    let runs = (0..workers).map(|_| async {
        let mut samples = Vec::with_capacity(total / workers);
        for _ in 0..total / workers {
            let began = Instant::now();
            let answer = host
                .http
                .get(&url)
                .header("cookie", cookie)
                .send()
                .await
                .expect("the page answers");
            assert_eq!(answer.status(), 200, "{path}");
            let page = answer.text().await.expect("the page arrives");
            assert!(page.contains("Signed in as"), "{path}: {page}");
            samples.push(began.elapsed());
        }
        samples
    });
    Stats::of_workers(runs, started).await
}

/// A signed-in team on a paid tier holding `per_kind` resources of each of `kinds`,
/// measured twice (so the charts have points); its session cookie.
async fn dashboard_team(host: &TestHost, kinds: &[&str], per_kind: usize) -> String {
    let account = host.new_account("bench-dashboard").await;
    host.set_team_tier(&account.email, "pro").await;
    for kind in kinds {
        for i in 0..per_kind {
            host.post(
                &format!("/{kind}/new"),
                Some("application/json"),
                json!({ "name": format!("{kind}-{i}") })
                    .to_string()
                    .into_bytes(),
                &[account.auth()],
            )
            .await
            .expect::<Created>(201);
        }
    }
    host.meter().await;
    host.meter().await;
    format!("instanode_session={}", account.token)
}

/// `total` small JSON deliveries to one receiver from `senders` concurrent senders, each
/// timed until the host answers 200 (stored).
async fn webhook_ingest(host: &TestHost, senders: usize, total: usize) -> Stats {
    let body = host.provision("webhook", "ingest").await;
    let url = body.field("receive_url").to_string();
    let per_sender = total / senders;
    let payload = bytes::Bytes::from(
        serde_json::to_vec(&json!({"event": "push", "payload": "x".repeat(512)})).expect("json"),
    );
    let started = Instant::now();
    let runs = (0..senders).map(|s| {
        let url = url.clone();
        let payload = payload.clone();
        async move {
            let mut samples = Vec::with_capacity(per_sender);
            for i in 0..per_sender {
                let sent = Instant::now();
                let reply = host
                    .http
                    .post(&url)
                    .header("X-Event", "push")
                    .header("X-Sender", format!("{s}-{i}"))
                    .header("content-type", "application/json")
                    .body(payload.clone())
                    .send()
                    .await
                    .expect("delivery sent");
                assert_eq!(reply.status().as_u16(), 200);
                samples.push(sent.elapsed());
            }
            samples
        }
    });
    Stats::of_workers(runs, started).await
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

/// Samples a process's resident memory every 20 ms and remembers the peak.
struct PeakMemory {
    peak_kib: Arc<AtomicU64>,
}

impl PeakMemory {
    fn watch(pid: u32) -> Self {
        let peak_kib = Arc::new(AtomicU64::new(0));
        let peak = peak_kib.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss_kib_of(pid), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        Self { peak_kib }
    }

    /// The peak since the last call, in MiB.
    fn take_mib(&self) -> f64 {
        self.peak_kib.swap(0, Ordering::Relaxed) as f64 / 1024.0
    }
}

/// What each kind's first operation is, for the table.
const KINDS: [(&str, &str); 7] = [
    ("db", "first query"),
    ("vector", "first query"),
    ("cache", "first command"),
    ("nosql", "first command"),
    ("queue", "first acknowledged JetStream publish"),
    ("storage", "first presigned PUT stored"),
    ("webhook", "first delivery stored"),
];
const WORKERS: usize = 16;
const SENDERS: usize = 64;

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("INSTANODE_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(96);
    let pool: i64 = std::env::var("INSTANODE_BENCH_WARM_POOL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(128);
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
        // The ingest scenario sends from one address far faster than any client would, and
        // warm pools refill between scenarios without the bench waiting on 5 s upkeep rounds.
        extra: "rate_limit_per_minute = 0\n\n[lifecycle]\nmaintain_interval_ms = 250".into(),
        ..HostOptions::default()
    })
    .await;
    let only = std::env::var("INSTANODE_BENCH_ONLY").unwrap_or_default();
    let wanted = |kind: &str| only.is_empty() || only.split(',').any(|k| k.trim() == kind);
    let command = |kind: &str| format!("./scripts/bench provision {kind}");
    let mut rows = vec![];
    wait_for_warm_pool(pool).await;
    // Warm the client and server paths once.
    provision_and_query(&host, "/db/new", "warmup").await;
    let memory = PeakMemory::watch(host.pid());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let idle = memory.take_mib();

    for (kind, first) in KINDS {
        if !wanted(kind) {
            continue;
        }
        let measurement = format!("POST /{kind}/new → {first}");
        wait_for_warm_pool(pool).await;
        rows.push(
            provisions(&host, &[kind], 1, n)
                .await
                .row(&measurement, 1, &command(kind)),
        );
        wait_for_warm_pool(pool).await;
        rows.push(provisions(&host, &[kind], WORKERS, n).await.row(
            &measurement,
            WORKERS,
            &command(kind),
        ));
    }
    let mut loaded = None;
    if wanted("mixed") {
        wait_for_warm_pool(pool).await;
        memory.take_mib();
        let kinds: Vec<&str> = KINDS.iter().map(|(kind, _)| *kind).collect();
        rows.push(provisions(&host, &kinds, WORKERS, n * 2).await.row(
            "all 7 kinds mixed → each one's first operation",
            WORKERS,
            &command("mixed"),
        ));
        loaded = Some((
            "provisioning all kinds",
            WORKERS,
            "mixed",
            memory.take_mib(),
        ));
    }
    let mut ingesting = None;
    if wanted("ingest") {
        // Let the pools refill first: refilling would otherwise compete with the senders.
        wait_for_warm_pool(pool).await;
        memory.take_mib();
        rows.push(webhook_ingest(&host, SENDERS, n * 200).await.row(
            "webhook ingest: POST to one receive URL → stored",
            SENDERS,
            &command("ingest"),
        ));
        ingesting = Some(("webhook ingest", SENDERS, "ingest", memory.take_mib()));
    }
    if wanted("dashboard") {
        const KINDS_SHOWN: [&str; 5] = ["db", "cache", "nosql", "queue", "webhook"];
        let cookie = dashboard_team(&host, &KINDS_SHOWN, 3).await;
        for (path, what) in [
            ("/dashboard", "overview (counts, charts, activity)"),
            ("/dashboard/resources", "resources list"),
        ] {
            rows.push(
                dashboard_page(&host, &cookie, path, WORKERS, n * 4)
                    .await
                    .row(
                        &format!("GET {path}: {what}, a team with 15 resources → whole page"),
                        WORKERS,
                        &command("dashboard"),
                    ),
            );
        }
    }
    rows.push(figure_row(
        "host resident memory, idle (providers loaded)",
        "0",
        &format!("{idle:.0} MiB"),
        &command("mixed"),
    ));
    for (what, concurrency, scenario, mib) in [loaded, ingesting].into_iter().flatten() {
        rows.push(figure_row(
            &format!("host resident memory, peak during {what}"),
            &concurrency.to_string(),
            &format!("{mib:.0} MiB"),
            &command(scenario),
        ));
    }

    println!("{STATS_HEADER}");
    for row in rows {
        println!("{row}");
    }
}

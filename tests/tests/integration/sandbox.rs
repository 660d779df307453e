//! A provider that traps, loops forever, eats memory or answers badly costs one 503 for that
//! call: the host keeps serving everyone else, and nothing is left behind.

use std::time::{Duration, Instant};

use instanode::api::schema::{Created, Readiness};
use instanode_tests::{HostOptions, ProviderSpec, TestHost, assert_error};
use serde_json::json;

const CALL_TIMEOUT_MS: u64 = 1500;

async fn host() -> TestHost {
    TestHost::start(HostOptions {
        providers: vec![
            ProviderSpec::testing(&["test"]),
            ProviderSpec::postgres(&["db"]),
        ],
        extra: format!(
            "[sandbox]\ncall_timeout_ms = {CALL_TIMEOUT_MS}\nmemory_mb = 32\nmax_instances = 64\n"
        ),
        ..HostOptions::default()
    })
    .await
}

#[tokio::test]
async fn misbehaving_providers_fail_the_call_not_the_host() {
    let mut host = host().await;
    for behaviour in ["trap", "loop", "hog", "bad-url"] {
        let started = Instant::now();
        let reply = host
            .post_json("/test/new", json!({"name": behaviour}))
            .await;
        let refusal = assert_error(&reply, 503, "provider_failed");
        assert_eq!(refusal.retry_after_seconds, Some(30));
        assert!(refusal.agent_action.is_some());
        assert!(
            started.elapsed() < Duration::from_millis(CALL_TIMEOUT_MS * 4),
            "{behaviour} took {:?}",
            started.elapsed()
        );
        assert!(
            host.is_running(),
            "host died after `{behaviour}`: {}",
            host.log()
        );
    }
    // The failed rows are marked failed, none active.
    let mut meta = host.metadata().await;
    let statuses: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT status::text FROM resources WHERE kind = 'test'")
            .fetch_all(&mut meta)
            .await
            .unwrap();
    assert_eq!(statuses, vec!["failed".to_string()]);
    // And a well-behaved call still works.
    let fine = host.post_json("/test/new", json!({"name": "fine"})).await;
    fine.expect::<Created>(201);
}

#[tokio::test]
async fn a_looping_provider_does_not_stall_other_requests() {
    let host = host().await;
    let looping = host.post_json("/test/new", json!({"name": "loop"}));
    let others = async {
        // Give the loop a head start, then use the host while it spins.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let started = Instant::now();
        let health = host.get("/healthz").await;
        let health_latency = started.elapsed();
        let db = host
            .post_json("/db/new", json!({"name": "while-looping"}))
            .await;
        (
            health.status.as_u16(),
            health_latency,
            db.status.as_u16(),
            started.elapsed(),
        )
    };
    let (looped, (health, health_latency, db, both)) = tokio::join!(looping, others);
    assert_error(&looped, 503, "provider_failed");
    assert_eq!(health, 200);
    assert_eq!(db, 201);
    assert!(
        health_latency < Duration::from_millis(500),
        "healthz waited {health_latency:?} behind a loop"
    );
    assert!(
        both < Duration::from_millis(CALL_TIMEOUT_MS),
        "requests waited {both:?} behind a loop"
    );
}

/// Starts a host with one postgres provider and returns why it refused to start.
async fn refusal(kinds: &'static [&'static str], grants: &'static [&'static str]) -> String {
    let mut postgres = ProviderSpec::postgres(kinds);
    postgres.config.grants = grants.iter().map(|g| g.to_string()).collect();
    let options = HostOptions {
        providers: vec![postgres],
        ..HostOptions::default()
    };
    let refused = TestHost::try_start(options).await;
    refused
        .err()
        .expect("the host must refuse to start")
        .to_string()
}

#[tokio::test]
async fn a_component_importing_an_ungranted_capability_is_refused_at_load() {
    let error = refusal(&["db"], &["log"]).await;
    assert!(error.contains("imports capability `sql`"), "{error}");
    assert!(error.contains("does not grant"), "{error}");
}

#[tokio::test]
async fn a_configured_kind_the_component_does_not_serve_is_refused() {
    let error = refusal(&["cache"], &["sql", "log"]).await;
    assert!(error.contains("configured kind `cache`"), "{error}");
}

#[tokio::test]
async fn a_granted_capability_without_its_backend_is_refused() {
    let error = refusal(&["db"], &["sql", "containers"]).await;
    assert!(
        error.contains("is granted `containers` but has no [providers.postgres.containers]"),
        "{error}"
    );
}

/// Sandbox failures in a row open the provider's breaker: its calls fail at once, other
/// providers keep serving, and `/readyz` and the operator API say why.
#[tokio::test]
async fn repeated_sandbox_failures_open_that_providers_breaker_only() {
    let host = TestHost::start(HostOptions {
        providers: vec![
            ProviderSpec::testing(&["test"]),
            ProviderSpec::postgres(&["db"]),
        ],
        extra: format!(
            "[sandbox]\ncall_timeout_ms = {CALL_TIMEOUT_MS}\nmemory_mb = 32\nmax_instances = 64\n\
             breaker_failures = 3\nbreaker_open_ms = 120000\n"
        ),
        ..HostOptions::default()
    })
    .await;
    for behaviour in ["trap", "loop", "hog"] {
        let reply = host
            .post_json("/test/new", json!({"name": behaviour}))
            .await;
        assert_error(&reply, 503, "provider_failed");
    }
    let started = Instant::now();
    let refused = host.post_json("/test/new", json!({"name": "fine"})).await;
    let refusal = assert_error(&refused, 503, "provider_unavailable");
    assert!(refusal.retry_after_seconds.unwrap() > 60);
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "an open breaker answers at once, took {:?}",
        started.elapsed()
    );

    // Other kinds are unaffected.
    let db = host.post_json("/db/new", json!({"name": "beside"})).await;
    db.expect::<Created>(201);

    let testing = host
        .provider_status("testing")
        .await
        .expect("testing is live");
    assert_eq!(testing.health.breaker, "open", "{testing:?}");
    assert_eq!(testing.health.failures_total, 3, "{testing:?}");
    assert!(
        testing
            .health
            .last_failure
            .as_deref()
            .unwrap()
            .contains("testing"),
        "{testing:?}"
    );
    let postgres = host
        .provider_status("postgres")
        .await
        .expect("postgres is live");
    assert_eq!(postgres.health.breaker, "closed", "{postgres:?}");

    let ready: Readiness = host.get("/readyz").await.expect(200);
    assert_eq!(ready.overall, "degraded");
    let check = &ready.checks["provider:testing"];
    assert_eq!(check.status, "failed", "{check:?}");
    assert!(check.message.contains("circuit open"), "{check:?}");
    assert_eq!(ready.checks["provider:postgres"].status, "ok");
}

/// A provider limited to one instance: a second call waits briefly, then gets 503.
#[tokio::test]
async fn a_provider_at_its_instance_limit_answers_busy() {
    let mut testing = ProviderSpec::testing(&["test"]);
    testing.config.sandbox.max_instances = Some(1);
    testing.config.sandbox.call_timeout_ms = Some(3000);
    let host = TestHost::start(HostOptions {
        providers: vec![testing, ProviderSpec::postgres(&["db"])],
        ..HostOptions::default()
    })
    .await;
    let looping = host.post_json("/test/new", json!({"name": "loop"}));
    let second = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let started = Instant::now();
        let reply = host.post_json("/test/new", json!({"name": "fine"})).await;
        (reply, started.elapsed())
    };
    let (looped, (busy, waited)) = tokio::join!(looping, second);
    assert_error(&looped, 503, "provider_failed");
    assert_error(&busy, 503, "provider_busy");
    assert!(waited < Duration::from_millis(2500), "waited {waited:?}");
    // Once the slot is free, calls go through again.
    let fine = host.post_json("/test/new", json!({"name": "fine"})).await;
    fine.expect::<Created>(201);
    // Readiness stays ok (one failure opens nothing) but names the recent failure.
    let ready: Readiness = host.get("/readyz").await.json();
    let check = &ready.checks["provider:testing"];
    assert_eq!(check.status, "ok", "{check:?}");
    assert!(
        check.message.contains("1 sandbox failures so far"),
        "{check:?}"
    );
}

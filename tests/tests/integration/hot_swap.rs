//! Providers are replaced while the host serves: through the operator API and through the
//! providers directory, under load, with refusals that leave the live version serving.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use instanode::api::schema::{Created, ResourceDeleted, Swap};
use instanode_tests::{
    ADMIN_BEARER, HostOptions, ProviderSpec, TestHost, assert_error, component_bytes,
};
use serde::Deserialize;
use serde_json::json;
use tokio::task::JoinSet;

const OLD: &str = "postgres@0.1.0";
const NEW: &str = "postgres@0.1.0+next";
const LOOPS: usize = 50;
/// Long enough for 20 swaps under load; each create leaves a real database (~8 MB) until
/// the clean-up at the end, so the window bounds the disk the test uses.
const LOAD_FOR: Duration = Duration::from_secs(12);
const SWAPS: usize = 20;
/// Deletes at once during the clean-up (each `DROP DATABASE` waits for a checkpoint).
const CLEANUP_CONCURRENCY: usize = 8;

fn version_header(reply: &instanode_tests::Reply) -> String {
    reply
        .headers
        .get("instanode-provider")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// One request of the load: what it answered, and which version said so.
struct Outcome {
    status: u16,
    version: String,
    id: Option<String>,
    token: Option<String>,
    body: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_is_swapped_twenty_times_under_load_without_a_failed_request() {
    let host = Arc::new(TestHost::start(HostOptions::only(ProviderSpec::postgres(&["db"]))).await);
    let versions = [
        component_bytes("variants/postgres-next.wasm"),
        component_bytes("postgres.wasm"),
    ];
    let stop = Arc::new(AtomicBool::new(false));

    // 50 loops creating databases as fast as the host answers.
    let mut loops = JoinSet::new();
    for n in 0..LOOPS {
        let (host, stop) = (host.clone(), stop.clone());
        loops.spawn(async move {
            let mut outcomes = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let created = host
                    .post_json("/db/new", json!({"name": format!("swap-{n}-{i}")}))
                    .await;
                // Whatever the answer: a resource when it is one.
                let resource = Created::deserialize(&created.body).ok();
                outcomes.push(Outcome {
                    status: created.status.as_u16(),
                    version: version_header(&created),
                    id: resource.as_ref().map(|r| r.id.to_string()),
                    token: resource.as_ref().map(|r| r.token.to_string()),
                    body: created.body.to_string(),
                });
            }
            outcomes
        });
    }

    // Meanwhile, 20 swaps spread over the load, alternating the two builds.
    let started = Instant::now();
    let mut swaps = Vec::new();
    for swap in 0..SWAPS {
        let due = LOAD_FOR.mul_f64((swap as f64 + 0.5) / SWAPS as f64);
        tokio::time::sleep(due.saturating_sub(started.elapsed())).await;
        let wasm = versions[swap % 2].clone();
        let reply = host.upload_provider("postgres", wasm).await;
        assert_eq!(reply.status.as_u16(), 200, "swap {swap}: {}", reply.body);
        let swapped: Swap = reply.json();
        let expected = if swap % 2 == 0 { "0.1.0+next" } else { "0.1.0" };
        assert_eq!(swapped.provider.version, expected, "{}", reply.body);
        assert!(!swapped.unchanged);
        swaps.push(swapped.swap_ms);
    }
    tokio::time::sleep(LOAD_FOR.saturating_sub(started.elapsed())).await;
    stop.store(true, Ordering::Relaxed);

    let mut outcomes = Vec::new();
    while let Some(done) = loops.join_next().await {
        outcomes.extend(done.expect("load loop"));
    }
    let failed: Vec<_> = outcomes
        .iter()
        .filter(|o| o.status != 201)
        .map(|o| format!("{}: {}", o.status, o.body))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed, e.g. {:?}",
        failed.len(),
        outcomes.len(),
        &failed[..failed.len().min(5)]
    );
    let by_version = outcomes.iter().fold(HashMap::new(), |mut m, o| {
        *m.entry(o.version.as_str()).or_insert(0) += 1;
        m
    });
    println!(
        "{} creates in {:?} by {LOOPS} loops; by version {by_version:?}; swap ms {swaps:?}",
        outcomes.len(),
        started.elapsed()
    );
    assert!(
        outcomes.len() >= LOOPS * 2,
        "the load was too thin to mean anything"
    );
    assert_eq!(
        by_version
            .keys()
            .filter(|v| **v == OLD || **v == NEW)
            .count(),
        by_version.len(),
        "every response names one of the two versions: {by_version:?}"
    );
    assert!(by_version.contains_key(OLD) && by_version.contains_key(NEW));

    // Within one request the version never changes: the row records the version that
    // answered.
    let ids: Vec<uuid::Uuid> = outcomes
        .iter()
        .filter_map(|o| o.id.as_deref()?.parse().ok())
        .collect();
    let recorded: HashMap<uuid::Uuid, String> = sqlx::query_as::<_, (uuid::Uuid, String)>(
        "SELECT id, provider || '@' || provider_version FROM resources WHERE id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(&mut host.metadata().await)
    .await
    .unwrap()
    .into_iter()
    .collect();
    for outcome in &outcomes {
        let id: uuid::Uuid = outcome.id.as_deref().unwrap().parse().unwrap();
        assert_eq!(recorded[&id], outcome.version, "resource {id}");
    }

    // The last swap put the original build back: only it answers now.
    for n in 0..5 {
        let reply = host
            .post_json("/db/new", json!({"name": format!("after-{n}")}))
            .await;
        reply.expect::<Created>(201);
        assert_eq!(version_header(&reply), OLD);
    }
    let status = host
        .provider_status("postgres")
        .await
        .expect("postgres is live");
    assert_eq!(status.version, "0.1.0");
    assert_eq!(
        status.previous.expect("a previous version").version,
        "0.1.0+next"
    );

    // Clean up: every database goes, whichever version made it.
    let started = Instant::now();
    let tokens: Vec<String> = outcomes.into_iter().filter_map(|o| o.token).collect();
    let count = tokens.len();
    let tokens = Arc::new(std::sync::Mutex::new(tokens));
    let mut cleaners = JoinSet::new();
    for _ in 0..CLEANUP_CONCURRENCY {
        let (host, tokens) = (host.clone(), tokens.clone());
        cleaners.spawn(async move {
            loop {
                let Some(token) = tokens.lock().unwrap().pop() else {
                    return;
                };
                let deleted = host.delete(&format!("/api/v1/resources/{token}")).await;
                deleted.expect::<ResourceDeleted>(200);
            }
        });
    }
    while let Some(done) = cleaners.join_next().await {
        done.expect("clean-up");
    }
    println!("deleted {count} databases in {:?}", started.elapsed());
}

#[tokio::test]
async fn old_resources_are_served_by_the_new_version() {
    let host = TestHost::start(HostOptions::only(ProviderSpec::postgres(&["db"]))).await;
    let old = host.provision("db", "made-by-old").await;
    let reply = host
        .upload_provider("postgres", component_bytes("variants/postgres-next.wasm"))
        .await;
    reply.expect::<Swap>(200);

    // Usage, credentials rotation and delete of a resource the old version made.
    let metered = host.meter().await;
    assert!(metered.measured >= 1, "{metered:?}");
    assert_eq!(metered.failed, 0, "{metered:?}");
    let token = old.token;
    let rotated = host
        .post(
            &format!("/api/v1/resources/{token}/rotate-credentials"),
            None,
            vec![],
            &[],
        )
        .await;
    assert_ne!(rotated.status.as_u16() / 100, 5, "{}", rotated.body);
    let deleted = host.delete(&format!("/api/v1/resources/{token}")).await;
    deleted.expect::<ResourceDeleted>(200);
    let mut meta = host.metadata().await;
    let (version, status): (String, String) =
        sqlx::query_as("SELECT provider_version, status::text FROM resources WHERE token = $1")
            .bind(token)
            .fetch_one(&mut meta)
            .await
            .unwrap();
    assert_eq!(
        version, "0.1.0",
        "the row keeps the version that created it"
    );
    assert_ne!(status, "active");
}

#[tokio::test]
async fn bad_versions_are_refused_and_the_live_one_keeps_serving() {
    let host = TestHost::start(HostOptions::only(ProviderSpec::postgres(&["db"]))).await;
    let before = host
        .provider_status("postgres")
        .await
        .expect("postgres is live");

    // Not WebAssembly; a core module rather than a component; an empty component (no
    // `provisioner` export); a component importing a capability postgres is not granted
    // (`kv`, imported by the testing provider); one that does not serve `db` (the example
    // provider serves `schema` only).
    let empty_component = b"\0asm\x0d\0\x01\0".to_vec();
    let cases: [(&str, Vec<u8>, &str); 5] = [
        ("text", b"definitely not wasm".to_vec(), "invalid_component"),
        (
            "core module",
            b"\0asm\x01\0\0\0".to_vec(),
            "invalid_component",
        ),
        ("empty component", empty_component, "wrong_world"),
        (
            "ungranted capability",
            component_bytes("testing.wasm"),
            "capability_not_granted",
        ),
        (
            "other kinds",
            component_bytes("example.wasm"),
            "kind_mismatch",
        ),
    ];
    for (case, wasm, code) in cases {
        let reply = host.upload_provider("postgres", wasm).await;
        let refusal = assert_error(&reply, 400, code);
        println!("{case}: {}", refusal.message);
        let db = host.provision("db", "still-serving").await;
        assert!(db.connection_url.starts_with("postgres://"));
        let now = host
            .provider_status("postgres")
            .await
            .expect("postgres is live");
        assert_eq!(now.sha256, before.sha256, "{case} changed the live version");
    }

    // Unknown provider, missing and wrong tokens, nothing to roll back to.
    let reply = host
        .upload_provider("nosuch", component_bytes("postgres.wasm"))
        .await;
    assert_error(&reply, 404, "provider_not_found");
    let reply = host
        .put(
            "/admin/providers/postgres",
            component_bytes("postgres.wasm"),
            &[],
        )
        .await;
    assert_error(&reply, 401, "unauthorized");
    let reply = host
        .get_with("/admin/providers", &[("authorization", "Bearer wrong")])
        .await;
    assert_error(&reply, 401, "unauthorized");
    assert_error(&rollback(&host).await, 409, "no_previous_version");

    // A good upload, then a rollback to what served before.
    let reply = host
        .upload_provider("postgres", component_bytes("variants/postgres-next.wasm"))
        .await;
    reply.expect::<Swap>(200);
    let rolled_back: Swap = rollback(&host).await.expect(200);
    assert_eq!(rolled_back.provider.version, "0.1.0");
    assert_eq!(rolled_back.provider.sha256, before.sha256);
    let db = host
        .post_json("/db/new", json!({"name": "rolled-back"}))
        .await;
    assert_eq!(version_header(&db), OLD);
}

async fn rollback(host: &TestHost) -> instanode_tests::Reply {
    host.post(
        "/admin/providers/postgres/rollback",
        None,
        vec![],
        &[("authorization", ADMIN_BEARER)],
    )
    .await
}

#[tokio::test]
async fn a_file_dropped_in_the_providers_directory_is_loaded() {
    let host = TestHost::start(HostOptions::only(ProviderSpec::postgres(&["db"]))).await;
    let dir = host.dir.join("providers");
    let drop_in = |bytes: Vec<u8>| {
        let tmp = dir.join(".postgres.wasm.incoming");
        std::fs::write(&tmp, bytes).unwrap();
        std::fs::rename(&tmp, dir.join("postgres.wasm")).unwrap();
    };
    let wait_for = |version: &'static str| {
        let host = &host;
        async move {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let status = host
                    .provider_status("postgres")
                    .await
                    .expect("postgres is live");
                if status.version == version {
                    return status;
                }
                assert!(Instant::now() < deadline, "still {status:?}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    drop_in(component_bytes("variants/postgres-next.wasm"));
    let status = wait_for("0.1.0+next").await;
    assert!(
        status.source.ends_with("providers/postgres.wasm"),
        "{status:?}"
    );
    let db = host.post_json("/db/new", json!({"name": "from-dir"})).await;
    assert_eq!(version_header(&db), NEW);

    // A broken file is refused; the live version keeps serving.
    drop_in(b"\0asm\x0d\0\x01\0".to_vec());
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        host.provider_status("postgres")
            .await
            .expect("postgres is live")
            .version,
        "0.1.0+next"
    );
    let db = host
        .post_json("/db/new", json!({"name": "after-bad-file"}))
        .await;
    db.expect::<Created>(201);

    // An upload is kept in the directory, so a restart serves it.
    let reply = host
        .upload_provider("postgres", component_bytes("postgres.wasm"))
        .await;
    reply.expect::<Swap>(200);
    assert_eq!(
        std::fs::read(dir.join("postgres.wasm")).unwrap(),
        component_bytes("postgres.wasm")
    );
    wait_for("0.1.0").await;
}

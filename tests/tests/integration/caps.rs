//! The anonymous tier's rules over HTTP: plans on /api/v1/capabilities, fingerprints
//! through trusted proxies only, caps per kind and per day, the recycle gate, the per-address
//! rate limit; under concurrency and across two replicas on one metadata database.

use instanode::api::schema::{Capabilities, Created, ErrorBody, ResourceDeleted};
use instanode_tests::{HostOptions, ProviderSpec, TestHost, assert_error, backend_objects};
use serde_json::{Value, json};

/// A plans file like the built-in one, with `provisions_per_day` for anonymous callers.
fn plans_with_daily_cap(dir: &std::path::Path, cap: u32) -> String {
    let built_in = include_str!("../../../host/plans.yaml");
    let changed = built_in.replacen(
        "provisions_per_day: 5",
        &format!("provisions_per_day: {cap}"),
        1,
    );
    assert_ne!(built_in, changed);
    let path = dir.join(format!("plans-{}.yaml", uuid::Uuid::new_v4().simple()));
    std::fs::write(&path, changed).unwrap();
    format!("plans = {:?}\n", path.display().to_string())
}

fn from(ip: &str) -> [(&str, &str); 1] {
    [("x-forwarded-for", ip)]
}

#[tokio::test]
async fn capabilities_list_every_tier_with_its_limits() {
    let host = TestHost::start(HostOptions::default()).await;
    let capabilities: Capabilities = host.get("/api/v1/capabilities").await.expect(200);
    let tiers = &capabilities.tiers;
    let names: Vec<&str> = tiers.iter().map(|t| t.tier.as_str()).collect();
    assert_eq!(
        names,
        [
            "anonymous",
            "free",
            "hobby",
            "hobby_plus",
            "pro",
            "growth",
            "team"
        ]
    );
    let anonymous = &tiers[0];
    assert_eq!(anonymous.limits["db"]["storage_mb"], 10);
    assert_eq!(anonymous.limits["db"]["connections"], 2);
    assert_eq!(anonymous.limits["cache"]["memory_mb"], 5);
    assert_eq!(anonymous.provisions_per_day, 5);
    assert_eq!(anonymous.resource_count_limit["default"], 1);
    assert_eq!(tiers[4].resource_count_limit["cache"], 3);
    // The host serves webhooks itself; the rest come from the configured providers.
    assert_eq!(capabilities.kinds, ["db", "vector", "webhook"]);
}

#[tokio::test]
async fn a_broken_plans_file_stops_the_start() {
    let dir = std::env::temp_dir();
    let path = dir.join(format!("bad-plans-{}.yaml", uuid::Uuid::new_v4().simple()));
    std::fs::write(&path, "tiers:\n  anonymous: {}\n").unwrap();
    let started = TestHost::try_start(HostOptions {
        extra: format!("plans = {:?}\n", path.display().to_string()),
        ..HostOptions::default()
    })
    .await;
    let error = started.err().expect("refused").to_string();
    assert!(error.contains("plans"), "{error}");
}

#[tokio::test]
async fn one_live_resource_per_kind_and_the_limits_reach_the_provider() {
    let host = TestHost::start(HostOptions::default()).await;
    let ip = "198.51.100.10";
    let first: Created = host
        .try_provision("db", "first", &from(ip))
        .await
        .expect(201);
    assert_eq!(first.limits.values["connections"], 2);
    assert_eq!(first.limits.values["storage_mb"], 10);

    // Same /24, other address: the same caller.
    let second = host
        .try_provision("db", "second", &from("198.51.100.99"))
        .await;
    assert_error(&second, 402, "resource_count_limit_exceeded");
    // The network proves nothing: the refusal names no token.
    let first_token = first.token.to_string();
    assert!(
        !second.body.to_string().contains(&first_token),
        "{}",
        second.body
    );
    // A caller that proves it holds the db is told which one it is.
    let proved = host
        .post(
            "/db/new",
            Some("application/json"),
            br#"{"name":"second"}"#.to_vec(),
            &[
                ("x-forwarded-for", "198.51.100.99"),
                ("x-instanode-token", first.upgrade_jwt.as_str()),
            ],
        )
        .await;
    let refusal = assert_error(&proved, 402, "resource_count_limit_exceeded");
    assert_eq!(refusal.extra["token"], first_token.as_str());
    assert!(
        refusal
            .agent_action
            .as_deref()
            .unwrap()
            .contains(&first_token)
    );
    // Another kind is fine; another subnet is another caller.
    assert_eq!(
        host.try_provision("vector", "v", &from(ip))
            .await
            .status
            .as_u16(),
        201
    );
    assert_eq!(
        host.try_provision("db", "x", &from("198.51.101.10"))
            .await
            .status
            .as_u16(),
        201
    );
}

#[tokio::test]
async fn forwarded_for_counts_only_from_trusted_proxies() {
    // Nobody trusted: X-Forwarded-For is ignored, every request is 127.0.0.1.
    let host = TestHost::start(HostOptions {
        trust_local_proxy: false,
        ..HostOptions::default()
    })
    .await;
    let a = host.try_provision("db", "a", &from("203.0.113.1")).await;
    a.expect::<Created>(201);
    let b = host.try_provision("db", "b", &from("192.0.2.1")).await;
    assert_error(&b, 402, "resource_count_limit_exceeded");

    // 127.0.0.1 trusted: the rightmost untrusted hop is the caller, so a forged hop on the
    // left changes nothing.
    let host = TestHost::start(HostOptions::default()).await;
    let a = host.try_provision("db", "a", &from("203.0.113.1")).await;
    a.expect::<Created>(201);
    let forged = host
        .try_provision("db", "b", &from("192.0.2.1, 203.0.113.1"))
        .await;
    assert_error(&forged, 402, "resource_count_limit_exceeded");
    let other = host
        .try_provision("db", "c", &from("203.0.113.1, 192.0.2.1"))
        .await;
    other.expect::<Created>(201);
}

#[tokio::test]
async fn over_the_daily_cap_the_existing_resource_comes_back() {
    let mut options = HostOptions {
        providers: vec![
            ProviderSpec::postgres(&["db", "vector"]),
            ProviderSpec::testing(&["test"]),
        ],
        ..HostOptions::default()
    };
    let dir = std::env::temp_dir();
    options.extra = plans_with_daily_cap(&dir, 2);
    let host = TestHost::start(options).await;
    let ip = "198.51.100.20";
    let db: Created = host.try_provision("db", "db", &from(ip)).await.expect(201);
    let db_token = db.token.to_string();
    let vector = host.try_provision("vector", "vec", &from(ip)).await;
    vector.expect::<Created>(201);

    // Third of the day, proving nothing: refused, naming no resource.
    let unproven = host.try_provision("db", "another", &from(ip)).await;
    assert_error(&unproven, 429, "provision_limit_reached");
    assert!(!unproven.body.to_string().contains(&db_token));
    // Proving the db (its token): it comes back, 200, with a working URL.
    let proof = [
        ("x-forwarded-for", ip),
        ("x-instanode-token", db_token.as_str()),
    ];
    let again = host
        .post(
            "/db/new",
            Some("application/json"),
            br#"{"name":"another"}"#.to_vec(),
            &proof,
        )
        .await;
    let again: Created = again.expect(200);
    assert_eq!(again.token, db.token);
    assert_eq!(again.connection_url, db.connection_url);
    assert_eq!(again.name, "db");
    let note = again.note.as_str();
    assert!(
        note.starts_with("Returning your existing resource. Expires in 23h"),
        "{note}"
    );
    // A kind it holds none of: a resource it proved comes back.
    let other = host
        .post(
            "/test/new",
            Some("application/json"),
            br#"{"name":"t"}"#.to_vec(),
            &proof,
        )
        .await;
    assert_eq!(other.expect::<Created>(200).token, db.token);

    let mut meta = host.metadata().await;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM resources")
        .fetch_one(&mut meta)
        .await
        .unwrap();
    assert_eq!(rows, 2, "nothing new was created over the cap");
}

#[tokio::test]
async fn over_the_daily_cap_with_nothing_committed_is_429() {
    let options = HostOptions {
        providers: vec![
            ProviderSpec::postgres(&["db"]),
            ProviderSpec::testing(&["test"]),
        ],
        extra: format!(
            "{}[sandbox]\ncall_timeout_ms = 1500\nmemory_mb = 64\nmax_instances = 64\n",
            plans_with_daily_cap(&std::env::temp_dir(), 1)
        ),
        ..HostOptions::default()
    };
    let host = TestHost::start(options).await;
    let ip = "198.51.100.30";
    // The first provision of the day hangs in its provider (then fails); meanwhile the
    // second finds the day's one provision used and nothing committed to hand back.
    let client = from(ip);
    let (slow, second) = tokio::join!(host.try_provision("test", "loop", &client), async {
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        host.try_provision("db", "db", &client).await
    });
    assert_error(&second, 429, "provision_limit_reached");
    assert_error(&slow, 503, "provider_failed");
    // A failed provision does not use up the day.
    let third = host.try_provision("db", "db", &from(ip)).await;
    third.expect::<Created>(201);
}

#[tokio::test]
async fn a_caller_whose_resources_all_ended_must_claim() {
    let host = TestHost::start(HostOptions::default()).await;
    let ip = "198.51.100.40";
    let db: Created = host.try_provision("db", "db", &from(ip)).await.expect(201);
    let deleted = host
        .delete(&format!("/api/v1/resources/{}", db.token))
        .await;
    deleted.expect::<ResourceDeleted>(200);

    // (Another name: the same body within 120 s would be answered from the dedup window.)
    for _ in 0..2 {
        let again = host.try_provision("db", "db-again", &from(ip)).await;
        let refusal = assert_error(&again, 402, "free_tier_recycle_requires_claim");
        assert!(
            refusal.extra["claim_url"]
                .as_str()
                .unwrap()
                .ends_with("/claim")
        );
        assert!(refusal.agent_action.as_deref().unwrap().contains("/claim"));
        assert!(
            again.headers.get("x-idempotent-replay").is_none(),
            "never answered from the idempotency cache"
        );
    }
    // Another network is unaffected.
    let other = host.try_provision("db", "db", &from("198.51.101.40")).await;
    other.expect::<Created>(201);
}

/// Statuses of many provisions of `kind` from one address, each with its own name, sent
/// at once to the hosts in turn.
async fn burst(hosts: &[&TestHost], n: usize, ip: &str) -> Vec<Value> {
    let calls = (0..n).map(|i| {
        let host = hosts[i % hosts.len()];
        async move {
            let reply = host
                .try_provision("db", &format!("burst-{i}"), &from(ip))
                .await;
            json!({"status": reply.status.as_u16(), "body": reply.body})
        }
    });
    futures::future::join_all(calls).await
}

async fn live_rows(host: &TestHost) -> Vec<String> {
    sqlx::query_scalar("SELECT id::text FROM resources WHERE status <> 'failed'")
        .fetch_all(&mut host.metadata().await)
        .await
        .unwrap()
}

#[tokio::test]
async fn twenty_concurrent_provisions_from_one_caller_create_one_database() {
    let host = TestHost::start(HostOptions::default()).await;
    let replies = burst(&[&host], 20, "198.51.100.50").await;
    let created: Vec<&Value> = replies.iter().filter(|r| r["status"] == 201).collect();
    assert_eq!(created.len(), 1, "{replies:?}");
    for reply in replies.iter().filter(|r| r["status"] != 201) {
        assert_eq!(reply["status"], 402, "{reply}");
        let refusal: ErrorBody = serde_json::from_value(reply["body"].clone()).unwrap();
        assert_eq!(refusal.error, "resource_count_limit_exceeded");
        // The burst proves no resource: the refusals name none.
        assert!(reply["body"].get("token").is_none(), "{reply}");
    }
    let rows = live_rows(&host).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(backend_objects(&rows[0]).await, (true, true));
}

#[tokio::test]
async fn two_replicas_on_one_metadata_database_share_caps_and_keys() {
    let a = TestHost::start(HostOptions::default()).await;
    let b = TestHost::start(HostOptions {
        metadata_db: Some(a.metadata_db.clone()),
        ..HostOptions::default()
    })
    .await;
    let replies = burst(&[&a, &b], 20, "198.51.100.60").await;
    let created = replies.iter().filter(|r| r["status"] == 201).count();
    assert_eq!(created, 1, "{replies:?}");
    assert_eq!(live_rows(&a).await.len(), 1);

    // An Idempotency-Key used on one replica is honoured by the other.
    let body = json!({"name": "keyed"}).to_string().into_bytes();
    let headers = [
        ("x-forwarded-for", "198.51.102.61"),
        ("idempotency-key", "replica-key-1"),
    ];
    let first: Created = a
        .post("/db/new", Some("application/json"), body.clone(), &headers)
        .await
        .expect(201);
    let replay = b
        .post("/db/new", Some("application/json"), body, &headers)
        .await;
    assert_eq!(replay.expect::<Created>(201).token, first.token);
    assert_eq!(replay.headers["x-idempotent-replay"], "true");
}

#[tokio::test]
async fn each_address_gets_a_hundred_requests_a_minute() {
    let host = TestHost::start(HostOptions::default()).await;
    let ip = [("x-forwarded-for", "198.51.100.70")];
    for i in 0..100 {
        let reply = host.get_with("/healthz", &ip).await;
        assert_eq!(reply.status.as_u16(), 200, "request {i}");
    }
    let limited = host.get_with("/healthz", &ip).await;
    assert_error(&limited, 429, "rate_limited");
    let wait: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    let refusal = limited.error();
    assert!(refusal.agent_action.is_some(), "{refusal:?}");
    // Every route counts, and other addresses are unaffected.
    let post = host
        .post("/db/new", Some("application/json"), b"{}".to_vec(), &ip)
        .await;
    assert_error(&post, 429, "rate_limited");
    let other = host
        .get_with("/healthz", &[("x-forwarded-for", "198.51.100.71")])
        .await;
    assert_eq!(other.status.as_u16(), 200);
}

/// A browser over the limit is shown a page saying so (with the code and Retry-After), not
/// the agents' JSON; the page's stylesheet and icon are never limited, so the pages a
/// person is allowed still render.
#[tokio::test]
async fn a_browser_over_the_limit_gets_a_page_and_assets_are_not_counted() {
    let host = TestHost::start(HostOptions {
        extra: "rate_limit_per_minute = 3\n".into(),
        ..HostOptions::default()
    })
    .await;
    let browser = reqwest::Client::new();
    let open = |path: &str| {
        browser
            .get(format!("{}{path}", host.url))
            .header("accept", "text/html,application/xhtml+xml")
            .header("x-forwarded-for", "198.51.100.80")
    };
    let first = open("/dashboard").send().await.unwrap();
    assert_eq!(first.status(), 200);
    let page = first.text().await.unwrap();
    let assets: Vec<&str> = page
        .split('"')
        .filter(|part| part.starts_with("/dashboard/assets/"))
        .collect();
    assert_eq!(assets.len(), 2, "a stylesheet and an icon: {page}");
    // Each asset fetched far more often than the limit allows, as many page views would.
    for round in 0..5 {
        for asset in &assets {
            let answer = open(asset).send().await.unwrap();
            assert_eq!(answer.status(), 200, "{asset}, round {round}");
        }
    }
    for _ in 0..2 {
        assert_eq!(open("/dashboard").send().await.unwrap().status(), 200);
    }
    let limited = open("/dashboard").send().await.unwrap();
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));
    let content_type = limited.headers()["content-type"].to_str().unwrap();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let refusal = limited.text().await.unwrap();
    assert!(
        refusal.contains("rate_limited") && refusal.contains("Too many requests"),
        "{refusal}"
    );
    // An agent from the same address still gets the JSON envelope.
    let agent = host
        .get_with("/healthz", &[("x-forwarded-for", "198.51.100.80")])
        .await;
    assert_error(&agent, 429, "rate_limited");
}

//! Two anonymous callers behind one /24 (an office, a CI runner pool, a carrier NAT): the
//! network is their shared quota key, never an identity. B never receives A's token, URL or
//! upgrade JWT from a provisioning route; A gets its own back by proving it holds it.

use instanode_tests::{HostOptions, ProviderSpec, Reply, TestHost, assert_error};
use serde_json::Value;

const A: &str = "10.99.7.11";
const B: &str = "10.99.7.200";

async fn create(host: &TestHost, kind: &str, body: &str, headers: &[(&str, &str)]) -> Reply {
    host.post(
        &format!("/{kind}/new"),
        Some("application/json"),
        body.as_bytes().to_vec(),
        headers,
    )
    .await
}

/// Fails when `reply` carries any of `secrets` anywhere (body or headers).
fn assert_leaks_nothing(reply: &Reply, secrets: &[&str], case: &str) {
    let text = format!("{} {:?}", reply.body, reply.headers);
    for secret in secrets {
        assert!(
            !text.contains(secret),
            "{case}: B received A's {secret}: {text}"
        );
    }
}

/// The resource's token and upgrade JWT, and its URLs where it has them.
fn secrets_of(resource: &Value) -> Vec<&str> {
    let secrets: Vec<&str> = ["token", "upgrade_jwt", "connection_url", "receive_url"]
        .iter()
        .filter_map(|field| resource[field].as_str())
        .collect();
    assert!(secrets.len() >= 3, "{resource}");
    secrets
}

#[tokio::test]
async fn a_neighbour_never_receives_anothers_resource_from_provisioning() {
    let host = TestHost::start(HostOptions::default()).await;
    let body = r#"{"name":"prod-db"}"#;
    let a = create(&host, "db", body, &[("x-forwarded-for", A)]).await;
    assert_eq!(a.status.as_u16(), 201, "{}", a.body);
    let secrets = secrets_of(&a.body);

    // The same body within 120 s: no replay of A's answer.
    let same_body = create(&host, "db", body, &[("x-forwarded-for", B)]).await;
    assert_error(&same_body, 402, "resource_count_limit_exceeded");
    assert_leaks_nothing(&same_body, &secrets, "same body within 120 s");

    // Over the per-kind cap with another name and an idempotency key of B's own.
    let over_cap = create(
        &host,
        "db",
        r#"{"name":"mine"}"#,
        &[("x-forwarded-for", B), ("idempotency-key", "b-own-key-1")],
    )
    .await;
    assert_error(&over_cap, 402, "resource_count_limit_exceeded");
    assert_leaks_nothing(&over_cap, &secrets, "over the per-kind cap");

    // A proving its resource is told which one holds the slot.
    let proved = create(
        &host,
        "db",
        body,
        &[("x-forwarded-for", A), ("x-instanode-token", secrets[0])],
    )
    .await;
    assert_error(&proved, 402, "resource_count_limit_exceeded");
    assert_eq!(proved.body["token"], a.body["token"]);

    // A forged or foreign proof is refused, not ignored.
    let forged = create(
        &host,
        "db",
        body,
        &[("x-forwarded-for", B), ("x-instanode-token", "not-a-token")],
    )
    .await;
    assert_error(&forged, 400, "invalid_resource_token");
}

#[tokio::test]
async fn after_the_daily_cap_only_a_proven_resource_comes_back() {
    let host = TestHost::start(HostOptions {
        providers: vec![
            ProviderSpec::postgres(&["db", "vector"]),
            ProviderSpec::redis(),
            ProviderSpec::spaces(),
        ],
        ..HostOptions::default()
    })
    .await;
    let mut created = Vec::new();
    for kind in ["db", "vector", "cache", "storage", "webhook"] {
        let reply = create(
            &host,
            kind,
            &format!(r#"{{"name":"a-{kind}"}}"#),
            &[("x-forwarded-for", A)],
        )
        .await;
        assert_eq!(reply.status.as_u16(), 201, "{kind}: {}", reply.body);
        created.push(reply.body);
    }
    let secrets: Vec<&str> = created.iter().flat_map(secrets_of).collect();

    // The network's five provisions are used up: B is refused and shown nothing of A's.
    let b = create(
        &host,
        "cache",
        r#"{"name":"b-cache"}"#,
        &[("x-forwarded-for", B)],
    )
    .await;
    assert_error(&b, 429, "provision_limit_reached");
    assert_leaks_nothing(&b, &secrets, "after the daily cap");
    let b_db = create(&host, "db", r#"{"name":"b-db"}"#, &[("x-forwarded-for", B)]).await;
    assert_error(&b_db, 429, "provision_limit_reached");
    assert_leaks_nothing(&b_db, &secrets, "after the daily cap, same kind");

    // A proves its db with the upgrade JWT and gets it back, credentials included.
    let db = &created[0];
    let back = create(
        &host,
        "db",
        r#"{"name":"again"}"#,
        &[
            ("x-forwarded-for", A),
            ("x-instanode-token", db["upgrade_jwt"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(back.status.as_u16(), 200, "{}", back.body);
    assert_eq!(back.body["token"], db["token"]);
    assert_eq!(back.body["connection_url"], db["connection_url"]);
}

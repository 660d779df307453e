//! Two anonymous callers behind one /24 (an office, a CI runner pool, a carrier NAT): the
//! network is their shared quota key, never an identity. B never receives A's token, URL or
//! upgrade JWT from provisioning (same body within 120 s, over a cap, after the daily cap),
//! a claim preview or a claim; A gets its own back by proving it holds it. A shared sender
//! address does not throttle everyone's webhooks; the host's flood ceiling still holds.

use instanode::api::schema::{
    ClaimPreview, ClaimSent, Created, ResourceList, Session, WebhookRequests,
};
use instanode_tests::{HostOptions, ProviderFields, ProviderSpec, Reply, TestHost, assert_error};

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
fn assert_leaks_nothing(reply: &Reply, secrets: &[String], case: &str) {
    // The raw answer: a secret must appear nowhere, whatever field it would be in.
    let text = format!("{} {:?}", reply.body, reply.headers);
    for secret in secrets {
        assert!(
            !text.contains(secret.as_str()),
            "{case}: B received A's {secret}: {text}"
        );
    }
}

/// The resource's token and upgrade JWT, and its URLs where it has them.
fn secrets_of(resource: &Created) -> Vec<String> {
    let receive_url = resource
        .provider_fields
        .get("receive_url")
        .and_then(|url| url.as_str());
    let secrets: Vec<String> = [
        resource.token.to_string(),
        resource.upgrade_jwt.clone(),
        resource.connection_url.clone(),
    ]
    .into_iter()
    .chain(receive_url.map(str::to_string))
    .filter(|secret| !secret.is_empty())
    .collect();
    assert!(secrets.len() >= 3, "{resource:?}");
    secrets
}

#[tokio::test]
async fn a_neighbour_never_receives_anothers_resource_from_provisioning() {
    let host = TestHost::start(HostOptions::default()).await;
    let body = r#"{"name":"prod-db"}"#;
    let a = create(&host, "db", body, &[("x-forwarded-for", A)]).await;
    let a: Created = a.expect(201);
    let secrets = secrets_of(&a);

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
        &[("x-forwarded-for", A), ("x-instanode-token", &secrets[0])],
    )
    .await;
    let refusal = assert_error(&proved, 402, "resource_count_limit_exceeded");
    assert_eq!(refusal.extra["token"], a.token.to_string());

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
        created.push(reply.json::<Created>());
    }
    let secrets: Vec<String> = created.iter().flat_map(secrets_of).collect();

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
            ("x-instanode-token", db.upgrade_jwt.as_str()),
        ],
    )
    .await;
    let back: Created = back.expect(200);
    assert_eq!(back.token, db.token);
    assert_eq!(back.connection_url, db.connection_url);
}

/// Claims move only what the claimer proves: B's claim with its own upgrade JWT takes none of
/// A's resources, a preview lists no tokens, and once claimed an upgrade JWT deploys nothing.
#[tokio::test]
async fn a_claim_moves_only_what_the_claimer_proves() {
    let host = TestHost::start(HostOptions::default()).await;
    let a = create(&host, "db", r#"{"name":"a-db"}"#, &[("x-forwarded-for", A)]).await;
    let a: Created = a.expect(201);
    let b = create(
        &host,
        "vector",
        r#"{"name":"b-vec"}"#,
        &[("x-forwarded-for", B)],
    )
    .await;
    let b: Created = b.expect(201);
    let secrets = secrets_of(&a);

    // B's preview shows B's resource only, and no token at all.
    let b_jwt = b.upgrade_jwt.as_str();
    let preview = host.get(&format!("/claim/preview?t={b_jwt}")).await;
    let previewed: ClaimPreview = preview.expect(200);
    assert_leaks_nothing(&preview, &secrets, "claim preview");
    assert!(!preview.body.to_string().contains(&b.token.to_string()));
    assert_eq!(previewed.items.len(), 1);

    // B claims with its own token: A's db stays anonymous.
    let email = format!("b-{}@example.com", uuid::Uuid::new_v4().simple());
    let claimed = host
        .post_json(
            "/claim",
            serde_json::json!({ "token": b_jwt, "email": email }),
        )
        .await;
    claimed.expect::<ClaimSent>(200);
    let account = host.follow_link(&email).await;
    let session: &Session = &account.session;
    assert_eq!(session.claimed_resources, 1);
    let listed = host.get_with("/api/v1/resources", &[account.auth()]).await;
    assert_leaks_nothing(&listed, &secrets, "the claimer's resource list");
    assert_eq!(listed.json::<ResourceList>().total, 1, "{}", listed.body);

    // A's upgrade JWT still claims A's db; B's, now spent, deploys nothing.
    let a_preview = host
        .get(&format!("/claim/preview?t={}", a.upgrade_jwt))
        .await;
    assert_eq!(a_preview.json::<ClaimPreview>().items.len(), 1);
    let deploy = instanode_tests::deploy::upload(
        &host,
        "/deploy/new",
        Some(b_jwt),
        &[("name", "after-claim")],
        &[("tarball", instanode_tests::deploy::static_site("hello"))],
    )
    .await;
    assert_error(&deploy, 401, "upgrade_token_claimed");
}

/// A webhook sender is a shared service delivering for many tenants from one address: its
/// deliveries count against each receiver, never against the address.
#[tokio::test]
async fn one_senders_address_does_not_throttle_everyones_webhooks() {
    let host = TestHost::start(HostOptions {
        providers: vec![],
        ..HostOptions::default()
    })
    .await;
    let a = create(
        &host,
        "webhook",
        r#"{"name":"a-hook"}"#,
        &[("x-forwarded-for", A)],
    )
    .await;
    let b = create(
        &host,
        "webhook",
        r#"{"name":"b-hook"}"#,
        &[("x-forwarded-for", "10.98.1.1")],
    )
    .await;
    let (a, b): (Created, Created) = (a.expect(201), b.expect(201));
    let paths: Vec<String> = [&a, &b]
        .iter()
        .map(|r| {
            let url = r.field("receive_url");
            url[url.find("/webhook/").unwrap()..].to_string()
        })
        .collect();
    let sender = [("x-forwarded-for", "203.0.113.9")];
    let deliveries = (0..1000).map(|i| {
        let path = &paths[i % 2];
        let host = &host;
        async move {
            host.post(
                path,
                Some("text/plain"),
                format!("event {i}").into_bytes(),
                &sender,
            )
            .await
            .status
            .as_u16()
        }
    });
    let statuses = futures::future::join_all(deliveries).await;
    let refused = statuses.iter().filter(|s| **s != 200).count();
    assert_eq!(refused, 0, "statuses: {statuses:?}");
    for (resource, path) in [&a, &b].iter().zip(&paths) {
        let token = resource.token;
        let listed = host
            .get(&format!("/api/v1/webhooks/{token}/requests?limit=100"))
            .await;
        assert_eq!(listed.status.as_u16(), 200, "{path}: {}", listed.body);
        assert_eq!(
            listed.json::<WebhookRequests>().count,
            100,
            "{path}: the ring keeps the newest 100"
        );
    }
}

#[tokio::test]
async fn a_flood_past_the_hosts_ceiling_is_refused_and_health_still_answers() {
    let host = TestHost::start(HostOptions {
        providers: vec![],
        extra: "webhook_deliveries_per_minute = 300\n".into(),
        ..HostOptions::default()
    })
    .await;
    let hook = create(
        &host,
        "webhook",
        r#"{"name":"flooded"}"#,
        &[("x-forwarded-for", A)],
    )
    .await;
    let hook: Created = hook.expect(201);
    let url = hook.field("receive_url");
    let path = url[url.find("/webhook/").unwrap()..].to_string();
    let flood = (0..400).map(|i| {
        let (host, path) = (&host, &path);
        async move {
            let from = format!("198.18.{}.{}", i / 250, i % 250);
            host.post(
                path,
                Some("text/plain"),
                b"x".to_vec(),
                &[("x-forwarded-for", &from)],
            )
            .await
        }
    });
    let (replies, health) = tokio::join!(futures::future::join_all(flood), host.get("/healthz"));
    assert_eq!(health.status.as_u16(), 200);
    let limited: Vec<&Reply> = replies
        .iter()
        .filter(|r| r.status.as_u16() == 429)
        .collect();
    assert!(!limited.is_empty(), "the ceiling let 400 through");
    let refusal = limited[0].error();
    assert_eq!(refusal.error, "rate_limited");
    assert!(refusal.agent_action.is_some(), "{refusal:?}");
    assert!(
        replies
            .iter()
            .all(|r| matches!(r.status.as_u16(), 200 | 429))
    );
}

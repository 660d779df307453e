//! Idempotent provisioning: explicit keys (24 h), a team's body fingerprint (120 s), no
//! implicit replay for anonymous callers, conflicts, in-flight duplicates, and what is never
//! cached.

use instanode::api::schema::Created;
use instanode_tests::{HostOptions, ProviderSpec, Reply, TestHost, assert_error};

async fn send(host: &TestHost, body: &str, headers: &[(&str, &str)]) -> Reply {
    host.post(
        "/db/new",
        Some("application/json"),
        body.as_bytes().to_vec(),
        headers,
    )
    .await
}

fn header<'a>(reply: &'a Reply, name: &str) -> Option<&'a str> {
    reply.headers.get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn an_explicit_key_replays_the_first_answer() {
    let host = TestHost::start(HostOptions::default()).await;
    let headers = [
        ("x-forwarded-for", "192.0.2.10"),
        ("idempotency-key", "retry-7f3a"),
    ];
    let first = send(&host, r#"{"name":"keyed","env":"dev"}"#, &headers).await;
    let created: Created = first.expect(201);
    assert_eq!(header(&first, "x-idempotency-source"), Some("explicit"));
    assert_eq!(header(&first, "x-idempotent-replay"), None);

    // Same key, same body written differently: the same resource, marked as a replay.
    let replay = send(&host, r#"{ "env": "dev", "name": "keyed" }"#, &headers).await;
    assert_eq!(replay.status.as_u16(), 201);
    // The replay is the first answer itself, field for field.
    assert_eq!(replay.body, first.body);
    assert_eq!(header(&replay, "x-idempotent-replay"), Some("true"));
    assert_eq!(header(&replay, "x-idempotency-source"), Some("explicit"));

    // Same key, other body: refused.
    let conflict = send(&host, r#"{"name":"other"}"#, &headers).await;
    assert_error(&conflict, 409, "idempotency_key_conflict");

    // The key is scoped to the caller: another network using it gets its own answer.
    let elsewhere = send(
        &host,
        r#"{"name":"keyed","env":"dev"}"#,
        &[
            ("x-forwarded-for", "192.0.3.10"),
            ("idempotency-key", "retry-7f3a"),
        ],
    )
    .await;
    assert_ne!(elsewhere.expect::<Created>(201).token, created.token);

    // Kept for 24 hours, not longer.
    host.advance_clock(23 * 3600).await;
    let late = send(&host, r#"{"name":"keyed","env":"dev"}"#, &headers).await;
    assert_eq!(header(&late, "x-idempotent-replay"), Some("true"));
    host.advance_clock(2 * 3600).await;
    let expired = send(&host, r#"{"name":"keyed","env":"dev"}"#, &headers).await;
    assert_eq!(
        header(&expired, "x-idempotent-replay"),
        None,
        "{}",
        expired.body
    );
}

#[tokio::test]
async fn bad_keys_are_refused() {
    let host = TestHost::start(HostOptions::default()).await;
    for key in ["   ", &"k".repeat(256)] {
        let reply = send(&host, r#"{"name":"x"}"#, &[("idempotency-key", key)]).await;
        assert_error(&reply, 400, "invalid_idempotency_key");
    }
}

#[tokio::test]
async fn without_a_key_a_teams_identical_requests_dedup_for_two_minutes() {
    let host = TestHost::start(HostOptions::default()).await;
    let bearer = host.new_account("dedup").await.bearer;
    let from = [("authorization", bearer.as_str())];
    let first = send(&host, r#"{"name":"dup"}"#, &from).await;
    let created: Created = first.expect(201);
    assert_eq!(header(&first, "x-idempotency-source"), Some("miss"));
    let double_click = send(&host, r#"{"name":"dup"}"#, &from).await;
    assert_eq!(double_click.expect::<Created>(201).token, created.token);
    assert_eq!(
        header(&double_click, "x-idempotency-source"),
        Some("fingerprint")
    );
    assert_eq!(header(&double_click, "x-idempotent-replay"), Some("true"));

    // Past the window the request runs again (and meets the team's one-db cap).
    host.advance_clock(121).await;
    let later = send(&host, r#"{"name":"dup"}"#, &from).await;
    assert_eq!(header(&later, "x-idempotency-source"), Some("miss"));
    assert_error(&later, 402, "resource_count_limit_exceeded");
}

/// A refusal did no work: a retry is judged afresh and answered under its own request id,
/// and a key first sent with a bad body still serves the corrected request.
#[tokio::test]
async fn refusals_are_judged_again_under_their_own_request_id() {
    let host = TestHost::start(HostOptions::default()).await;
    let bearer = host.new_account("refused").await.bearer;
    let from = [("authorization", bearer.as_str())];
    let bad = r#"{"name":"no/slashes"}"#;
    let first = send(&host, bad, &from).await;
    let first_refusal = assert_error(&first, 400, "invalid_name");
    let second = send(&host, bad, &from).await;
    let second_refusal = assert_error(&second, 400, "invalid_name");
    assert_eq!(header(&second, "x-idempotent-replay"), None);
    assert_eq!(
        Some(second_refusal.request_id.as_str()),
        header(&second, "x-request-id"),
        "the body names the request it answers"
    );
    assert_ne!(second_refusal.request_id, first_refusal.request_id);

    let keyed = [
        ("authorization", bearer.as_str()),
        ("idempotency-key", "fixed-after-a-typo"),
    ];
    assert_error(&send(&host, bad, &keyed).await, 400, "invalid_name");
    let fixed = send(&host, r#"{"name":"typo-fixed"}"#, &keyed).await;
    fixed.expect::<Created>(201);
}

#[tokio::test]
async fn without_a_key_anonymous_requests_are_never_replayed() {
    let host = TestHost::start(HostOptions::default()).await;
    let from = [("x-forwarded-for", "192.0.2.20")];
    let first = send(&host, r#"{"name":"dup"}"#, &from).await;
    first.expect::<Created>(201);
    assert_eq!(header(&first, "x-idempotency-source"), Some("miss"));
    // Anyone on the network could send the same body: it runs again and meets the cap.
    let again = send(&host, r#"{"name":"dup"}"#, &from).await;
    assert_eq!(header(&again, "x-idempotency-source"), Some("miss"));
    assert_eq!(header(&again, "x-idempotent-replay"), None);
    let refusal = assert_error(&again, 402, "resource_count_limit_exceeded");
    assert!(!refusal.extra.contains_key("token"), "{}", again.body);
}

#[tokio::test]
async fn server_failures_are_never_replayed() {
    let host = TestHost::start(HostOptions {
        fault_injection: true,
        ..HostOptions::default()
    })
    .await;
    let headers = [
        ("x-forwarded-for", "192.0.2.30"),
        ("idempotency-key", "fails-once"),
        ("x-instanode-fault", "after_provision"),
    ];
    let failed = send(&host, r#"{"name":"f"}"#, &headers).await;
    assert_eq!(failed.status.as_u16(), 503, "{}", failed.body);
    let retried = send(&host, r#"{"name":"f"}"#, &headers[..2]).await;
    retried.expect::<Created>(201);
    assert_eq!(header(&retried, "x-idempotent-replay"), None);
}

#[tokio::test]
async fn a_duplicate_while_the_first_runs_is_told_to_wait() {
    let host = TestHost::start(HostOptions {
        providers: vec![ProviderSpec::testing(&["test"])],
        extra: "[sandbox]\ncall_timeout_ms = 1500\nmemory_mb = 64\nmax_instances = 64\n".into(),
        ..HostOptions::default()
    })
    .await;
    let headers = [
        ("x-forwarded-for", "192.0.2.40"),
        ("idempotency-key", "slow-1"),
    ];
    let post = || {
        host.post(
            "/test/new",
            Some("application/json"),
            br#"{"name":"loop"}"#.to_vec(),
            &headers,
        )
    };
    let (first, second) = tokio::join!(post(), async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        post().await
    });
    assert_error(&first, 503, "provider_failed");
    assert_error(&second, 409, "idempotency_key_in_progress");
}

//! Every bad input gets its status and stable code in the one error envelope.

use instanode::api::schema::{Created, Liveness, Readiness};
use instanode_tests::{HostOptions, ProviderSpec, TestHost, assert_error};
use serde_json::json;

async fn host() -> TestHost {
    TestHost::start(HostOptions {
        providers: vec![ProviderSpec::testing(&["db", "vector"])],
        ..HostOptions::default()
    })
    .await
}

#[tokio::test]
async fn names_are_required_and_validated() {
    let host = host().await;
    for path in ["/db/new", "/vector/new"] {
        for body in [
            json!({}),
            json!({"name": null}),
            json!({"name": ""}),
            json!({"env": "production"}),
        ] {
            assert_error(&host.post_json(path, body).await, 400, "name_required");
        }
        let empty = host
            .post(path, Some("application/json"), Vec::new(), &[])
            .await;
        assert_error(&empty, 400, "name_required");
        for name in [
            json!("-starts-with-dash"),
            json!(" space"),
            json!("semi;colon"),
            json!("x".repeat(65)),
            json!(42),
            json!(["a"]),
            json!("caf\u{e9}"),
            json!("new\nline"),
        ] {
            let reply = host.post_json(path, json!({"name": name})).await;
            let refusal = assert_error(&reply, 400, "invalid_name");
            assert!(
                refusal.agent_action.is_some(),
                "agent_action on invalid_name"
            );
        }
        assert_error(
            &host
                .post_json(path, json!({"name": "ok", "env": "Prod!"}))
                .await,
            400,
            "invalid_env",
        );
        let ok = host
            .post_json(path, json!({"name": "x".repeat(64), "env": "staging"}))
            .await;
        assert_eq!(ok.expect::<Created>(201).env, "staging");
    }
}

#[tokio::test]
async fn bodies_must_be_json_objects_of_bounded_size() {
    let host = host().await;
    let form = host
        .post(
            "/db/new",
            Some("application/x-www-form-urlencoded"),
            b"name=x".to_vec(),
            &[],
        )
        .await;
    assert_error(&form, 415, "unsupported_media_type");
    let undeclared = host
        .post("/db/new", None, br#"{"name":"x"}"#.to_vec(), &[])
        .await;
    assert_error(&undeclared, 415, "unsupported_media_type");
    for bad in [
        &b"{\"name\":"[..],
        b"not json",
        b"[1,2]",
        b"\"just a string\"",
        b"{\"name\":\"a\"} trailing",
        b"\xff\xfe",
    ] {
        let reply = host
            .post("/db/new", Some("application/json"), bad.to_vec(), &[])
            .await;
        assert_error(&reply, 400, "invalid_body");
    }
    let huge = format!(r#"{{"name":"big","pad":"{}"}}"#, "x".repeat(100 * 1024));
    assert_error(
        &host
            .post("/db/new", Some("application/json"), huge.into_bytes(), &[])
            .await,
        413,
        "payload_too_large",
    );
    let charset = host
        .post(
            "/db/new",
            Some("application/json; charset=utf-8"),
            br#"{"name":"cs"}"#.to_vec(),
            &[],
        )
        .await;
    assert_eq!(charset.status.as_u16(), 201);
}

#[tokio::test]
async fn unknown_routes_methods_and_kinds_use_the_envelope() {
    let host = host().await;
    assert_error(&host.get("/nope").await, 404, "not_found");
    assert_error(&host.get("/db/new").await, 405, "method_not_allowed");
    // A kind no provider serves here.
    assert_error(
        &host.post_json("/cache/new", json!({"name": "c"})).await,
        404,
        "not_found",
    );
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let host = host().await;
    let mine = host
        .post(
            "/db/new",
            Some("application/json"),
            b"{}".to_vec(),
            &[("x-request-id", "my-trace-42")],
        )
        .await;
    let refusal = assert_error(&mine, 400, "name_required");
    assert_eq!(refusal.request_id, "my-trace-42");
    // An unsafe id is replaced, not echoed.
    let unsafe_id = host
        .post(
            "/db/new",
            Some("application/json"),
            b"{}".to_vec(),
            &[("x-request-id", "bad id<script>")],
        )
        .await;
    // The envelope names `retry_after_seconds`, null here.
    let refusal = assert_error(&unsafe_id, 400, "name_required");
    let generated = refusal.request_id.as_str();
    assert_ne!(generated, "bad id<script>");
    assert_eq!(uuid::Uuid::parse_str(generated).map(|_| ()), Ok(()));
    assert_eq!(refusal.retry_after_seconds, None);
}

#[tokio::test]
async fn health_reports_version_and_commit() {
    let host = host().await;
    // `ok` is `true`, `version` and `commit_id` strings: what `Liveness` reads.
    let health: Liveness = host.get("/healthz").await.expect(200);
    assert!(!health.version.is_empty(), "{health:?}");
    let ready: Readiness = host.get("/readyz").await.expect(200);
    assert_eq!(ready.checks["metadata_db"].status, "ok");
    assert_eq!(ready.checks["provider:testing"].status, "ok");
}

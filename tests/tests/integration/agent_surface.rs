//! The spec's agent surface as an agent written against it uses it: links that open in a
//! browser, the device flow's field names, older parameter names, and deploy forms that
//! say what they did not use.

use std::time::Duration;

use instanode::api::schema::{
    ApiKeyCreated, ApiKeyList, CliApproval, CliApproved, CliSession, DeploymentAnswer,
    DeploymentEvents, LinkSent, Liveness, Presigned, Session,
};
use instanode::store::DeploymentStatus;
use instanode_tests::deploy::{
    deploy, namespace_of, new_owner, remove_namespace, static_site, upload, wait_for,
};
use instanode_tests::mail::link_sent_to;
use instanode_tests::{HostOptions, ProviderSpec, TestHost, assert_error};
use serde_json::json;

/// A page: its status, content type and text.
async fn page(host: &TestHost, url: &str) -> (u16, String, String) {
    let answer = host.http.get(url).send().await.expect("the host answers");
    let status = answer.status().as_u16();
    let content_type = answer
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (
        status,
        content_type,
        answer.text().await.unwrap_or_default(),
    )
}

#[tokio::test]
async fn a_claim_url_opens_a_page_in_a_browser() {
    let host = TestHost::start(HostOptions::default()).await;
    let created = host.provision("db", "claim-link").await;
    let claim_url = created.claim_url.as_str();
    let (status, content_type, text) = page(&host, claim_url).await;
    assert_eq!(status, 200, "{claim_url}: {text}");
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(
        text.contains("claim-link"),
        "the page names the resource: {text}"
    );
    assert_eq!(page(&host, &created.upgrade).await.0, 200);

    // The recycle gate's claim_url carries no token: it opens the form that makes an account.
    let (status, content_type, text) = page(&host, &format!("{}/claim", host.url)).await;
    assert_eq!(status, 200, "{text}");
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(text.contains(r#"id="signin""#), "{text}");
}

#[tokio::test]
async fn the_device_flow_answers_in_the_specs_words() {
    let host = TestHost::start(HostOptions::of(vec![])).await;
    // `expires_at` is read as an RFC 3339 time.
    let started: CliSession = host.post_json("/auth/cli", json!({})).await.expect(201);
    assert_eq!(started.expires_in, 600, "the project's name stays");
    let id = started.session_id;

    let account = host.new_account("device").await;
    let approved = host
        .post(
            &format!("/auth/cli/{id}/approve"),
            None,
            vec![],
            &[account.auth()],
        )
        .await;
    approved.expect::<CliApproval>(200);
    // `api_token` is there, a string, as the spec names it.
    let collected: CliApproved = host.get(&format!("/auth/cli/{id}")).await.expect(200);
    assert_eq!(collected.status, "approved");
    assert_eq!(collected.api_token, collected.api_key);

    // Nobody approves in time: the poll says so instead of "not found".
    let late: CliSession = host.post_json("/auth/cli", json!({})).await.json();
    host.advance_clock(601).await;
    let expired = host.get(&format!("/auth/cli/{}", late.session_id)).await;
    let error = assert_error(&expired, 410, "session_expired");
    assert_eq!(error.extra["status"], "expired", "{}", expired.body);
}

#[tokio::test]
async fn older_parameter_names_still_work() {
    let host = TestHost::start(HostOptions::of(vec![])).await;
    let email = format!("older-{}@example.com", uuid::Uuid::new_v4().simple());
    host.post_json("/auth/email/start", json!({ "email": email }))
        .await
        .expect::<LinkSent>(202);
    let link = link_sent_to(&email).await.replacen("?t=", "?token=", 1);
    let reply = host.get(&link).await;
    assert_eq!(reply.status.as_u16(), 200, "{link}: {}", reply.body);
    assert!(!reply.json::<Session>().session_token.is_empty());

    // `jwt` on POST /claim is read and documented as deprecated.
    let document = host.get("/openapi.json").await.body;
    let jwt = &document["components"]["schemas"]["ClaimRequest"]["properties"]["jwt"];
    assert_eq!(jwt["deprecated"], true, "{jwt}");
}

#[tokio::test]
async fn deploy_forms_name_what_they_ignore_and_private_apps_need_a_tier() {
    let host = TestHost::start(HostOptions::only(ProviderSpec::deploy())).await;
    let namespace = namespace_of(&host);
    let jwt = new_owner(&host).await;

    // An anonymous caller's apps are public: asking for a private one is refused before
    // anything is built.
    let private = deploy(
        &host,
        &jwt,
        static_site("secret"),
        &[
            ("name", "private-app"),
            ("private", "true"),
            ("allowed_ips", "10.0.0.0/8"),
        ],
    )
    .await;
    assert_error(&private, 402, "private_deploy_requires_pro");
    let stack = upload(
        &host,
        "/stacks/new",
        Some(&jwt),
        &[
            ("name", "private-stack"),
            ("private", "true"),
            (
                "manifest",
                "services:\n  web:\n    build: .\n    port: 8080\n    expose: true\n",
            ),
        ],
        &[("web", static_site("secret"))],
    )
    .await;
    assert_error(&stack, 501, "private_deploys_unavailable");

    // A field the route does not read is named back, not dropped unseen.
    let reply = deploy(
        &host,
        &jwt,
        static_site("public"),
        &[("name", "typo-app"), ("prot", "9090")],
    )
    .await;
    let answer: DeploymentAnswer = reply.expect(202);
    assert_eq!(
        answer.ignored_fields.as_deref(),
        Some(&["prot".to_string()][..]),
        "{}",
        reply.body
    );
    let id = answer.id.to_string();
    let item = wait_for(
        &host,
        &id,
        1,
        &["healthy", "failed"],
        Duration::from_secs(180),
    )
    .await;
    assert_eq!(item.status, DeploymentStatus::Healthy, "{item:?}");
    // A null field reads as `None` whether or not it was sent: ask the raw answer.
    let raw = host.get(&format!("/api/v1/deployments/{id}")).await.body;
    assert!(
        raw["item"].get("error_message").is_some(),
        "the spec's name is there: {raw}"
    );
    remove_namespace(&namespace);
}

#[tokio::test]
async fn a_command_missing_from_the_image_is_the_apps_fault_not_the_engines() {
    let host = TestHost::start(HostOptions::only(ProviderSpec::deploy())).await;
    let namespace = namespace_of(&host);
    let jwt = new_owner(&host).await;
    let missing = instanode_tests::deploy::tarball(&[(
        "Dockerfile",
        "FROM instanode/busybox:1\nCMD [\"/bin/not-here\", \"-f\"]\n",
    )]);
    let reply = deploy(&host, &jwt, missing, &[("name", "no-such-program")]).await;
    let id = reply.expect::<DeploymentAnswer>(202).id.to_string();
    let item = wait_for(&host, &id, 1, &["failed"], Duration::from_secs(180)).await;
    let events: DeploymentEvents = host
        .get(&format!("/api/v1/deployments/{id}/events"))
        .await
        .json();
    // The autopsy is free-form: reason, exit_code, last_lines, hint.
    let autopsy = &events.events[0];
    let hint = autopsy["hint"].as_str().unwrap_or_default();
    assert_eq!(autopsy["reason"], "StartFailed", "{autopsy}");
    assert_eq!(
        item.error_message
            .as_deref()
            .map(|m| m.starts_with("StartFailed")),
        Some(true),
        "{item:?}"
    );
    assert!(
        !hint.contains("transient"),
        "not an engine outage: {autopsy}"
    );
    assert!(hint.contains("CMD"), "the hint names the fix: {autopsy}");
    assert!(
        autopsy["last_lines"].to_string().contains("/bin/not-here"),
        "the engine's words: {autopsy} ({item:?})"
    );
    remove_namespace(&namespace);
}

#[tokio::test]
async fn every_docs_page_in_one_file_and_liveness_names_its_build_and_database() {
    let host = TestHost::start(HostOptions::of(vec![])).await;
    let (status, content_type, full) = page(&host, &format!("{}/llms-full.txt", host.url)).await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    assert!(full.starts_with("# "), "llms.txt comes first");
    assert!(
        full.contains("# Writing a provider"),
        "with every docs page"
    );
    assert!(full.contains(&host.url), "naming this host");
    let (status, content_type, providers) =
        page(&host, &format!("{}/docs/providers", host.url)).await;
    assert_eq!(status, 200, "a page without its .md");
    assert!(content_type.starts_with("text/markdown"), "{content_type}");
    assert!(providers.starts_with("# Writing a provider"));

    let health: Liveness = host.get("/healthz").await.expect(200);
    assert_eq!(health.metadata_db, "reachable", "{health:?}");
    assert!(
        chrono::DateTime::parse_from_rfc3339(&health.build_time).is_ok(),
        "{health:?}"
    );
}

/// `POST /deploy/new` as multipart with extra headers; reqwest picks a new boundary for
/// every request, as a retrying client does.
async fn deploy_with(
    host: &TestHost,
    jwt: &str,
    tarball: Vec<u8>,
    name: &str,
    headers: &[(&str, &str)],
) -> instanode_tests::Reply {
    let form = reqwest::multipart::Form::new()
        .text("name", name.to_string())
        .part(
            "tarball",
            reqwest::multipart::Part::bytes(tarball).file_name("app.tar.gz"),
        );
    let mut request = host
        .http
        .post(format!("{}/deploy/new", host.url))
        .bearer_auth(jwt)
        .multipart(form);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    instanode_tests::reply(request.send().await.expect("the host answers")).await
}

fn header<'a>(reply: &'a instanode_tests::Reply, name: &str) -> Option<&'a str> {
    reply.headers.get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn a_retried_deploy_with_its_key_makes_one_app() {
    let host = TestHost::start(HostOptions::only(ProviderSpec::deploy())).await;
    let namespace = namespace_of(&host);
    let jwt = new_owner(&host).await;
    let key = [("idempotency-key", "deploy-retry-5c1e")];
    let first = deploy_with(&host, &jwt, static_site("once"), "retried", &key).await;
    let first_id = first.expect::<DeploymentAnswer>(202).id;
    let again = deploy_with(&host, &jwt, static_site("once"), "retried", &key).await;
    let again_id = again.expect::<DeploymentAnswer>(202).id;
    assert_eq!(header(&again, "x-idempotent-replay"), Some("true"));
    assert_eq!(again_id, first_id, "one app, not two");
    let other = deploy_with(&host, &jwt, static_site("twice"), "retried", &key).await;
    assert_error(&other, 409, "idempotency_key_conflict");

    // Another holder's upgrade token never gets this answer, even with the same key.
    let stranger = new_owner(&host).await;
    let theirs = deploy_with(&host, &stranger, static_site("once"), "retried", &key).await;
    let their_id = theirs.expect::<DeploymentAnswer>(202).id;
    assert_eq!(header(&theirs, "x-idempotent-replay"), None);
    assert_ne!(their_id, first_id);
    remove_namespace(&namespace);
}

#[tokio::test]
async fn presigns_and_api_keys_replay_under_their_key() {
    let host = TestHost::start(HostOptions::only(ProviderSpec::spaces())).await;
    let storage = host.provision("storage", "presigned").await;
    let path = format!("/storage/{}/presign", storage.token);
    let keyed = [("idempotency-key", "presign-91b2")];
    let ask = || {
        host.post(
            &path,
            Some("application/json"),
            br#"{"operation":"PUT","key":"a.txt"}"#.to_vec(),
            &keyed,
        )
    };
    let first: Presigned = ask().await.expect(200);
    let again = ask().await;
    assert_eq!(header(&again, "x-idempotent-replay"), Some("true"));
    assert_eq!(again.json::<Presigned>().url, first.url);

    let session = host.new_account("keys").await.bearer;
    let headers = [
        ("authorization", session.as_str()),
        ("idempotency-key", "key-7d0a"),
    ];
    let create = || {
        host.post(
            "/api/v1/auth/api-keys",
            Some("application/json"),
            br#"{"name":"ci"}"#.to_vec(),
            &headers,
        )
    };
    let first: ApiKeyCreated = create().await.expect(201);
    let again = create().await;
    assert_eq!(header(&again, "x-idempotent-replay"), Some("true"));
    assert_eq!(
        again.json::<ApiKeyCreated>().id,
        first.id,
        "one key, not two"
    );
    let keys = host
        .get_with("/api/v1/auth/api-keys", &[("authorization", &session)])
        .await;
    assert_eq!(keys.json::<ApiKeyList>().items.len(), 1, "{}", keys.body);
}

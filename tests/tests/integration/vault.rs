//! The vault end to end: a team's versioned secrets under its tier's caps, invisible to
//! other teams, and `vault://` references an app reads only when it rolls out.

use std::time::Duration;

use instanode::api::schema::{DeploymentAnswer, VaultNames, VaultSecret, VaultWritten};
use instanode_tests::deploy::{
    deploy, namespace_of, new_owner, remove_namespace, tarball, wait_for, wait_for_body,
};
use instanode_tests::{HostOptions, ProviderSpec, Reply, TestHost, assert_error};
use serde_json::{Value, json};

const ROLLOUT: Duration = Duration::from_secs(120);

/// A busybox web server answering the value of `$GREETING` at `/` on port 8080.
fn greeter() -> Vec<u8> {
    tarball(&[(
        "Dockerfile",
        "FROM instanode/busybox:1\nEXPOSE 8080\nCMD [\"sh\", \"-c\", \"mkdir -p /tmp/www && echo \\\"$GREETING\\\" > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www\"]\n",
    )])
}

/// A signed-in team on `tier`: its email and session token.
async fn team(host: &TestHost, label: &str, tier: &str) -> (String, String) {
    let email = format!("{label}-{}@example.com", uuid::Uuid::new_v4().simple());
    let session = host.sign_in(&email).await.token;
    sqlx::query(
        "UPDATE teams SET tier = $2 WHERE id = (SELECT team_id FROM users WHERE email = $1)",
    )
    .bind(&email)
    .bind(tier)
    .execute(&mut host.metadata().await)
    .await
    .unwrap();
    (email, session)
}

async fn call(
    host: &TestHost,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
    session: Option<&str>,
) -> Reply {
    let mut request = host
        .http
        .request(method, format!("{}{path}", host.url))
        .header("x-forwarded-for", host.fresh_client());
    if let Some(body) = body {
        request = request.json(&body);
    }
    if let Some(session) = session {
        request = request.bearer_auth(session);
    }
    instanode_tests::reply(request.send().await.expect("the host answers")).await
}

#[tokio::test]
async fn secrets_are_versioned_capped_and_private_to_their_team() {
    let host = TestHost::start(HostOptions::only(ProviderSpec::deploy())).await;
    use reqwest::Method;
    let put = |path: &str, value: &str, session: &str| {
        let (host, path, body, session) = (
            &host,
            path.to_string(),
            json!({"value": value}),
            session.to_string(),
        );
        async move { call(host, Method::PUT, &path, Some(body), Some(&session)).await }
    };

    // No account, no vault; the free tier has none either.
    let reply = call(
        &host,
        Method::PUT,
        "/api/v1/vault/production/K",
        Some(json!({"value": "v"})),
        None,
    )
    .await;
    assert_error(&reply, 401, "unauthorized");
    let (_, free) = team(&host, "free", "free").await;
    assert_error(
        &put("/api/v1/vault/production/K", "v", &free).await,
        402,
        "vault_not_available",
    );

    // Hobby: production only, versions count up, reads name a version or take the newest.
    let (email, hobby) = team(&host, "hobby", "hobby").await;
    assert_error(
        &put("/api/v1/vault/staging/K", "v", &hobby).await,
        402,
        "vault_env_not_allowed",
    );
    assert_error(
        &put("/api/v1/vault/production/9BAD", "v", &hobby).await,
        400,
        "invalid_vault_key",
    );
    assert_error(
        &put("/api/v1/vault/Prod/K", "v", &hobby).await,
        400,
        "invalid_env",
    );
    let reply = put("/api/v1/vault/production/API_TOKEN", "first", &hobby).await;
    assert_eq!(reply.expect::<VaultWritten>(201).version, 1);
    let reply = put("/api/v1/vault/production/API_TOKEN", "second", &hobby).await;
    assert_eq!(reply.expect::<VaultWritten>(201).version, 2);
    let read = |path: &str, session: &str| {
        let (host, path, session) = (&host, path.to_string(), session.to_string());
        async move { call(host, Method::GET, &path, None, Some(&session)).await }
    };
    let newest = read("/api/v1/vault/production/API_TOKEN", &hobby).await;
    let newest = newest.expect::<VaultSecret>(200);
    assert_eq!((newest.value.as_str(), newest.version), ("second", 2));
    let first = read("/api/v1/vault/production/API_TOKEN?version=1", &hobby).await;
    assert_eq!(first.expect::<VaultSecret>(200).value, "first");
    assert_error(
        &read("/api/v1/vault/production/API_TOKEN?version=9", &hobby).await,
        404,
        "vault_key_not_found",
    );
    let names = read("/api/v1/vault/production", &hobby).await;
    assert_eq!(names.expect::<VaultNames>(200).keys, ["API_TOKEN"]);
    // Names only: no value travels with them.
    assert!(!names.body.to_string().contains("second"));

    // Rotation needs an existing name.
    let rotate = |key: &str| format!("/api/v1/vault/production/{key}/rotate");
    let reply = call(
        &host,
        Method::POST,
        &rotate("NOPE"),
        Some(json!({"value": "x"})),
        Some(&hobby),
    )
    .await;
    assert_error(&reply, 404, "vault_key_not_found");
    let reply = call(
        &host,
        Method::POST,
        &rotate("API_TOKEN"),
        Some(json!({"value": "third"})),
        Some(&hobby),
    )
    .await;
    assert_eq!(reply.expect::<VaultWritten>(200).version, 3);

    // Another team sees, changes and deletes nothing of it.
    let (_, pro) = team(&host, "other", "pro").await;
    assert_error(
        &read("/api/v1/vault/production/API_TOKEN", &pro).await,
        404,
        "vault_key_not_found",
    );
    let listed = read("/api/v1/vault/production", &pro).await;
    assert!(listed.expect::<VaultNames>(200).keys.is_empty());
    let reply = call(
        &host,
        Method::DELETE,
        "/api/v1/vault/production/API_TOKEN",
        None,
        Some(&pro),
    )
    .await;
    assert_error(&reply, 404, "vault_key_not_found");
    let reply = call(
        &host,
        Method::POST,
        &rotate("API_TOKEN"),
        Some(json!({"value": "stolen"})),
        Some(&pro),
    )
    .await;
    assert_error(&reply, 404, "vault_key_not_found");
    let still = read("/api/v1/vault/production/API_TOKEN", &hobby).await;
    assert_eq!(still.expect::<VaultSecret>(200).value, "third");

    // The cap counts names, not versions: 20 on Hobby.
    for i in 1..20 {
        let reply = put(&format!("/api/v1/vault/production/K{i}"), "v", &hobby).await;
        assert_eq!(reply.status.as_u16(), 201, "{}", reply.body);
    }
    let reply = put("/api/v1/vault/production/ONE_TOO_MANY", "v", &hobby).await;
    assert_error(&reply, 402, "vault_quota_exceeded");
    assert_eq!(
        put("/api/v1/vault/production/K1", "again", &hobby)
            .await
            .status
            .as_u16(),
        201
    );

    // Delete takes every version.
    let reply = call(
        &host,
        Method::DELETE,
        "/api/v1/vault/production/API_TOKEN",
        None,
        Some(&hobby),
    )
    .await;
    assert_eq!(reply.status.as_u16(), 204);
    assert_error(
        &read("/api/v1/vault/production/API_TOKEN?version=1", &hobby).await,
        404,
        "vault_key_not_found",
    );

    // Every read and write is on the record, with who made it.
    let reads: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM vault_events WHERE actor = $1 AND action = 'read' AND key = 'API_TOKEN'",
    )
    .bind(&email)
    .fetch_one(&mut host.metadata().await)
    .await
    .unwrap();
    assert_eq!(reads, 3);
}

#[tokio::test]
async fn apps_read_vault_references_only_when_they_roll_out() {
    let host = TestHost::start(HostOptions::only(ProviderSpec::deploy())).await;
    let namespace = namespace_of(&host);
    use reqwest::Method;
    let greeting = json!({"GREETING": "vault://GREETING"}).to_string();

    // Anonymous apps have no vault.
    let jwt = new_owner(&host).await;
    let reply = deploy(
        &host,
        &jwt,
        greeter(),
        &[("name", "a"), ("env_vars", &greeting)],
    )
    .await;
    assert_error(&reply, 403, "vault_requires_auth");

    let (_, session) = team(&host, "vault-app", "pro").await;
    let fields = [
        ("name", "greeter"),
        ("env", "production"),
        ("env_vars", greeting.as_str()),
    ];
    // A name the vault does not hold fails before anything is built.
    assert_error(
        &deploy(&host, &session, greeter(), &fields).await,
        400,
        "vault_ref_failed",
    );
    let path = "/api/v1/vault/production/GREETING";
    let reply = call(
        &host,
        Method::PUT,
        path,
        Some(json!({"value": "from the vault"})),
        Some(&session),
    )
    .await;
    assert_eq!(reply.status.as_u16(), 201, "{}", reply.body);

    let reply = deploy(&host, &session, greeter(), &fields).await;
    let answer = reply.expect::<DeploymentAnswer>(202);
    let (id, url) = (answer.id.to_string(), answer.url.expect("an app URL"));
    wait_for(&host, &id, 1, &["healthy"], ROLLOUT).await;
    wait_for_body(&host, &url, "from the vault", Duration::from_secs(10)).await;

    // A rotation reaches the app on its next rollout; an env update may name the vault too.
    let rotate = format!("{path}/rotate");
    let reply = call(
        &host,
        Method::POST,
        &rotate,
        Some(json!({"value": "rotated"})),
        Some(&session),
    )
    .await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.body);
    let reply = host
        .post_json(&format!("/deploy/{id}/redeploy"), Value::Null)
        .await;
    assert_eq!(reply.status.as_u16(), 202, "{}", reply.body);
    wait_for(&host, &id, 2, &["healthy"], ROLLOUT).await;
    wait_for_body(&host, &url, "rotated", Duration::from_secs(10)).await;
    let missing = json!({"env_vars": {"OTHER": "vault://production/MISSING"}});
    let reply = call(
        &host,
        Method::PATCH,
        &format!("/deploy/{id}/env"),
        Some(missing),
        None,
    )
    .await;
    assert_error(&reply, 400, "vault_ref_failed");

    let resolved: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM vault_events WHERE actor = 'rollout' AND action = 'resolve' AND key = 'GREETING'",
    )
    .fetch_one(&mut host.metadata().await)
    .await
    .unwrap();
    assert_eq!(resolved, 2);

    host.delete(&format!("/api/v1/deployments/{id}")).await;
    remove_namespace(&namespace);
}

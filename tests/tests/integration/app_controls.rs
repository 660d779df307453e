//! What an agent does to a running app or stack after creating it, on the real engine:
//! merge env vars (and see the new value served), redeploy a stack's services, follow a
//! service's logs, set how long apps and stacks live within the tier, keep private apps to
//! their addresses, and delete a paid team's app only once a person confirms.

use std::collections::BTreeMap;
use std::time::Duration;

use instanode::api::schema::{
    ApiKeyCreated, DeletionPending, DeletionSettled, DeploymentAnswer, DeploymentDeleted,
    EnvUpdated, Lifetime, StackCreated, StackRedeployed, TeamSettings,
};
use instanode::store::DeploymentStatus;
use instanode_tests::deploy::{
    deploy, namespace_of, new_owner, remove_namespace, tarball, upload, wait_for, wait_for_body,
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

async fn patch(host: &TestHost, path: &str, body: Value, bearer: Option<&str>) -> Reply {
    let mut request = host
        .http
        .patch(format!("{}{path}", host.url))
        .json(&body)
        .header("x-forwarded-for", host.fresh_client());
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    instanode_tests::reply(request.send().await.expect("the host answers")).await
}

async fn post(host: &TestHost, path: &str, body: Value, bearer: Option<&str>) -> Reply {
    let authorization = bearer.map(|b| format!("Bearer {b}"));
    let headers: Vec<(&str, &str)> = authorization
        .iter()
        .map(|value| ("authorization", value.as_str()))
        .collect();
    host.post(
        path,
        Some("application/json"),
        body.to_string().into_bytes(),
        &headers,
    )
    .await
}

#[tokio::test]
async fn env_updates_merge_and_rebuild_only_what_changed() {
    let host = TestHost::start(HostOptions::only(ProviderSpec::deploy())).await;
    let namespace = namespace_of(&host);
    let jwt = new_owner(&host).await;
    // Room for one more small variable, not for another 30 KiB.
    let padding = "p".repeat(40 * 1024);
    let env_vars = json!({"GREETING": "hello", "OLD": "x", "PAD": padding}).to_string();
    let reply = deploy(
        &host,
        &jwt,
        greeter(),
        &[("name", "greeter"), ("env_vars", &env_vars)],
    )
    .await;
    let answer = reply.expect::<DeploymentAnswer>(202);
    let (id, url) = (answer.id.to_string(), answer.url.expect("an app URL"));
    wait_for(&host, &id, 1, &["healthy"], ROLLOUT).await;
    wait_for_body(&host, &url, "hello", Duration::from_secs(10)).await;

    let path = format!("/deploy/{id}/env");
    assert_error(
        &patch(&host, &path, json!({}), None).await,
        400,
        "missing_env",
    );
    assert_error(
        &patch(&host, &path, json!({"env_vars": {"bad-name": "x"}}), None).await,
        400,
        "invalid_env_vars",
    );
    let too_much = json!({"env_vars": {"MORE": "m".repeat(30 * 1024)}});
    assert_error(
        &patch(&host, &path, too_much, None).await,
        413,
        "env_too_large",
    );
    let unknown = format!("/deploy/{}/env", uuid::Uuid::new_v4());
    let reply = patch(&host, &unknown, json!({"env_vars": {"A": "1"}}), None).await;
    assert_eq!(reply.status.as_u16(), 404, "{}", reply.body);
    // None of the refusals started a rollout.
    let item = wait_for(&host, &id, 1, &["healthy"], ROLLOUT).await;
    assert_eq!(item.generation, 1);

    // Set one, remove one: the values stay hidden, the app rebuilds and serves the new one.
    let reply = patch(
        &host,
        &path,
        json!({"env_vars": {"GREETING": "bonjour", "OLD": "", "PAD": ""}}),
        None,
    )
    .await;
    let updated = reply.expect::<EnvUpdated>(200);
    assert_eq!(updated.redeploying, ["app"]);
    let hidden = BTreeMap::from([("GREETING".to_string(), "***".to_string())]);
    assert_eq!(updated.env["app"], hidden);
    assert!(
        !reply.body.to_string().contains("bonjour"),
        "{}",
        reply.body
    );
    wait_for(&host, &id, 2, &["healthy"], ROLLOUT).await;
    wait_for_body(&host, &url, "bonjour", Duration::from_secs(10)).await;

    // The same merge again changes nothing, so nothing rebuilds (`env` is accepted too).
    let reply = patch(&host, &path, json!({"env": {"GREETING": "bonjour"}}), None).await;
    assert!(reply.expect::<EnvUpdated>(200).redeploying.is_empty());
    let item = wait_for(&host, &id, 2, &["healthy"], ROLLOUT).await;
    assert_eq!(item.generation, 2);

    let reply = host.delete(&format!("/api/v1/deployments/{id}")).await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.body);
    remove_namespace(&namespace);
}

#[tokio::test]
async fn a_stack_is_updated_redeployed_and_followed_by_its_owner_only() {
    let host = TestHost::start(HostOptions::only(ProviderSpec::deploy())).await;
    let namespace = namespace_of(&host);
    let manifest = "services:\n  web:\n    build: .\n    port: 8080\n    expose: true\n    env:\n      GREETING: hello\n  worker:\n    build: .\n    port: 8080\n";
    let reply = upload(
        &host,
        "/stacks/new",
        None,
        &[("name", "pair"), ("manifest", manifest)],
        &[("web", greeter()), ("worker", greeter())],
    )
    .await;
    let created = reply.expect::<StackCreated>(202);
    let slug = created.slug.clone();
    let owner = created
        .stack_token
        .clone()
        .expect("an anonymous stack's token");
    let web_url = created
        .stack_url
        .clone()
        .expect("the exposed service's URL");
    let service_id = |name: &str| {
        let service = created.services.iter().find(|s| s.name == name).unwrap();
        service.id.to_string()
    };
    let (web, worker) = (service_id("web"), service_id("worker"));
    wait_for(&host, &web, 1, &["healthy"], ROLLOUT).await;
    wait_for(&host, &worker, 1, &["healthy"], ROLLOUT).await;
    wait_for_body(&host, &web_url, "hello", Duration::from_secs(10)).await;

    // Another caller: no bearer is 401, someone else's is "no such stack".
    let stranger = new_owner(&host).await;
    let env_path = format!("/stacks/{slug}/env");
    let change = json!({"env_vars": {"GREETING": "hello"}});
    assert_error(
        &patch(&host, &env_path, change.clone(), None).await,
        401,
        "unauthorized",
    );
    assert_error(
        &patch(&host, &env_path, change.clone(), Some(stranger.as_str())).await,
        404,
        "stack_not_found",
    );
    let redeploy_path = format!("/stacks/{slug}/redeploy");
    assert_error(
        &post(&host, &redeploy_path, Value::Null, Some(stranger.as_str())).await,
        404,
        "stack_not_found",
    );
    let logs = host
        .get_with(
            &format!("/stacks/{slug}/logs/web"),
            &[("authorization", &format!("Bearer {stranger}"))],
        )
        .await;
    assert_error(&logs, 404, "stack_not_found");

    // GREETING=hello is new to the worker only: only the worker rebuilds.
    let reply = patch(&host, &env_path, change, Some(owner.as_str())).await;
    assert_eq!(reply.expect::<EnvUpdated>(200).redeploying, ["worker"]);
    wait_for(&host, &worker, 2, &["healthy"], ROLLOUT).await;
    let item = wait_for(&host, &web, 1, &["healthy"], ROLLOUT).await;
    assert_eq!(item.generation, 1);

    // One service, or an unknown one.
    let reply = post(
        &host,
        &format!("{redeploy_path}?service=nope"),
        Value::Null,
        Some(owner.as_str()),
    )
    .await;
    assert_error(&reply, 404, "service_not_found");
    let reply = post(
        &host,
        &format!("{redeploy_path}?service=web"),
        Value::Null,
        Some(owner.as_str()),
    )
    .await;
    let redeployed = reply.expect::<StackRedeployed>(202);
    let names: Vec<&str> = redeployed
        .services
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(names, ["web"]);
    wait_for(&host, &web, 2, &["healthy"], ROLLOUT).await;
    wait_for_body(&host, &web_url, "hello", Duration::from_secs(10)).await;

    // The owner follows a service's logs: the build's lines, then the terminator.
    let response = host
        .http
        .get(format!("{}/stacks/{slug}/logs/web", host.url))
        .bearer_auth(&owner)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let text = response.text().await.unwrap();
    let lines: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .collect();
    assert_eq!(lines.last().map(|l| l.trim()), Some("[end]"), "{text}");
    assert!(lines.len() > 1, "{text}");

    // An anonymous stack keeps the lifetime it was made with.
    let reply = post(
        &host,
        &format!("/api/v1/stacks/{slug}/ttl"),
        json!({"hours": 2}),
        Some(owner.as_str()),
    )
    .await;
    assert_error(&reply, 402, "claim_required");
    let reply = post(
        &host,
        &format!("/api/v1/stacks/{slug}/make-permanent"),
        Value::Null,
        Some(owner.as_str()),
    )
    .await;
    assert_error(&reply, 402, "claim_required");

    let reply = host
        .delete_with(
            &format!("/api/v1/stacks/{slug}"),
            &[("authorization", &format!("Bearer {owner}"))],
        )
        .await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.body);
    remove_namespace(&namespace);
}

/// `GET /api/v1/deployments/{id}`, read as its type.
async fn get_app(host: &TestHost, id: &str) -> DeploymentAnswer {
    host.get(&format!("/api/v1/deployments/{id}"))
        .await
        .expect::<DeploymentAnswer>(200)
}

/// Moves the team of `email` and its resources to `tier`, as a billing event would.
async fn set_team_tier(host: &TestHost, email: &str, tier: &str) {
    let mut db = host.metadata().await;
    for statement in [
        "UPDATE teams SET tier = $2 WHERE id = (SELECT team_id FROM users WHERE email = $1)",
        "UPDATE resources SET tier = $2 WHERE team_id = (SELECT team_id FROM users WHERE email = $1)",
    ] {
        sqlx::query(statement)
            .bind(email)
            .bind(tier)
            .execute(&mut db)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn app_lifetimes_are_set_within_the_tier() {
    let host = TestHost::start(HostOptions::only(ProviderSpec::deploy())).await;
    let namespace = namespace_of(&host);

    // Anonymous: claim first.
    let jwt = new_owner(&host).await;
    let reply = deploy(&host, &jwt, greeter(), &[("name", "anon")]).await;
    let answer = reply.expect::<DeploymentAnswer>(202);
    let anonymous = answer.id.to_string();
    assert!(answer.item.expires_at.is_some(), "{}", reply.body);
    let ttl = |id: &str| format!("/api/v1/deployments/{id}/ttl");
    let permanent = |id: &str| format!("/api/v1/deployments/{id}/make-permanent");
    assert_error(
        &post(&host, &ttl(&anonymous), json!({"hours": 2}), None).await,
        402,
        "claim_required",
    );
    assert_error(
        &post(&host, &permanent(&anonymous), Value::Null, None).await,
        402,
        "claim_required",
    );

    // A free team: within its 24 hours, never permanent.
    let email = format!("ttl-{}@example.com", uuid::Uuid::new_v4().simple());
    let session = host.sign_in(&email).await.token;
    let reply = deploy(&host, &session, greeter(), &[("name", "team-app")]).await;
    let id = reply.expect::<DeploymentAnswer>(202).id.to_string();
    for hours in [json!(0), json!(8761), json!("2"), json!(1.5), Value::Null] {
        let reply = post(&host, &ttl(&id), json!({"hours": hours}), None).await;
        assert_error(&reply, 400, "invalid_hours");
    }
    let reply = post(&host, &ttl(&id), json!({"hours": 48}), None).await;
    let refusal = assert_error(&reply, 402, "upgrade_required");
    assert_eq!(refusal.extra["limit_hours"], 24, "{}", reply.body);
    assert_error(
        &post(&host, &permanent(&id), Value::Null, None).await,
        402,
        "upgrade_required",
    );
    let set = post(&host, &ttl(&id), json!({"hours": 2}), None).await;
    let lifetime = set.expect::<Lifetime>(200);
    assert_eq!(lifetime.ttl_policy, "custom");
    let expires_at = lifetime.expires_at.expect("an end");
    let shown = get_app(&host, &id).await;
    assert_eq!(shown.item.expires_at, Some(expires_at));
    let minutes_left = (expires_at - shown.item.created_at).num_minutes();
    assert!(
        (119..=121).contains(&minutes_left),
        "{minutes_left} minutes"
    );

    // Past the two hours the reaper removes it.
    host.advance_clock(2 * 3600 + 60).await;
    host.reap().await;
    let reply = host.get(&format!("/api/v1/deployments/{id}")).await;
    assert_error(&reply, 410, "resource_expired");

    // A paid team: any lifetime, or none.
    set_team_tier(&host, &email, "pro").await;
    let reply = deploy(&host, &session, greeter(), &[("name", "kept")]).await;
    let kept = reply.expect::<DeploymentAnswer>(202).id.to_string();
    let reply = post(&host, &ttl(&kept), json!({"hours": 500}), None).await;
    reply.expect::<Lifetime>(200);
    let reply = post(&host, &permanent(&kept), Value::Null, None).await;
    let lifetime = reply.expect::<Lifetime>(200);
    assert_eq!(lifetime.ttl_policy, "permanent");
    assert_eq!(lifetime.expires_at, None);
    assert_eq!(get_app(&host, &kept).await.item.expires_at, None);
    // Idempotent.
    let again = post(&host, &permanent(&kept), Value::Null, None).await;
    again.expect::<Lifetime>(200);

    // The team's default for new apps: the tier's lifetime, or a day when it says so.
    let settings = "/api/v1/team/settings";
    let with_session = [("authorization", format!("Bearer {session}"))];
    let headers: Vec<(&str, &str)> = with_session.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_error(&host.get(settings).await, 401, "unauthorized");
    let shown = host.get_with(settings, &headers).await;
    let policy = shown
        .expect::<TeamSettings>(200)
        .default_deployment_ttl_policy;
    assert_eq!(policy, "permanent");
    let bad = patch(
        &host,
        settings,
        json!({"default_deployment_ttl_policy": "forever"}),
        Some(session.as_str()),
    )
    .await;
    assert_error(&bad, 400, "invalid_ttl_policy");
    let set = patch(
        &host,
        settings,
        json!({"default_deployment_ttl_policy": "auto_24h"}),
        Some(session.as_str()),
    )
    .await;
    set.expect::<TeamSettings>(200);
    let reply = deploy(&host, &session, greeter(), &[("name", "daily")]).await;
    let answer = reply.expect::<DeploymentAnswer>(202);
    let daily = answer.id.to_string();
    let lifetime = answer.item.expires_at.expect("a day's lifetime") - answer.item.created_at;
    assert_eq!(lifetime.num_hours(), 24, "{}", reply.body);
    // Apps made before keep theirs.
    assert_eq!(get_app(&host, &kept).await.item.expires_at, None);

    for id in [anonymous, kept, daily] {
        host.delete(&format!("/api/v1/deployments/{id}")).await;
    }
    remove_namespace(&namespace);
}

/// A request for `url` through the host's proxy, as if from `client` (the host trusts its
/// local proxy's `X-Forwarded-For`).
async fn from_address(host: &TestHost, url: &str, client: &str) -> (u16, String) {
    let parsed = url::Url::parse(url).unwrap();
    let authority = format!(
        "{}:{}",
        parsed.host_str().unwrap(),
        parsed.port().unwrap_or(80)
    );
    let response = host
        .http
        .get(format!("{}/", host.url))
        .header("host", authority)
        .header("accept", "application/json")
        .header("x-forwarded-for", client)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

#[tokio::test]
async fn private_apps_answer_only_their_allowed_addresses() {
    let host = TestHost::start(HostOptions::only(ProviderSpec::deploy())).await;
    let namespace = namespace_of(&host);
    let private = [
        ("name", "private"),
        ("private", "true"),
        ("allowed_ips", "203.0.113.0/24"),
    ];

    // Anonymous and free callers: public apps only, and nothing is created.
    let jwt = new_owner(&host).await;
    let reply = deploy(&host, &jwt, greeter(), &private).await;
    assert_error(&reply, 402, "private_deploy_requires_pro");

    let email = format!("private-{}@example.com", uuid::Uuid::new_v4().simple());
    let session = host.sign_in(&email).await.token;
    set_team_tier(&host, &email, "pro").await;
    let refusals = [
        (
            vec![("name", "p"), ("private", "true")],
            "private_deploy_requires_allowed_ips",
        ),
        (
            vec![("name", "p"), ("allowed_ips", "10.0.0.1, not-an-address")],
            "invalid_allowed_ip",
        ),
    ];
    for (fields, code) in refusals {
        assert_error(
            &deploy(&host, &session, greeter(), &fields).await,
            400,
            code,
        );
    }
    let many: Vec<String> = (0..33).map(|i| format!("10.0.{i}.1")).collect();
    let many = many.join(",");
    let reply = deploy(
        &host,
        &session,
        greeter(),
        &[("name", "p"), ("allowed_ips", &many)],
    )
    .await;
    assert_error(&reply, 400, "too_many_allowed_ips");

    let env_vars = json!({"GREETING": "for the allowed"}).to_string();
    let mut fields = private.to_vec();
    fields.push(("env_vars", &env_vars));
    let reply = deploy(&host, &session, greeter(), &fields).await;
    let answer = reply.expect::<DeploymentAnswer>(202);
    assert!(answer.item.private);
    assert_eq!(answer.item.allowed_ips, ["203.0.113.0/24"]);
    let (id, url) = (answer.id.to_string(), answer.url.expect("an app URL"));
    wait_for(&host, &id, 1, &["healthy"], ROLLOUT).await;

    let (status, body) = from_address(&host, &url, "203.0.113.9").await;
    assert_eq!((status, body.trim()), (200, "for the allowed"));
    let (status, body) = from_address(&host, &url, "198.51.100.7").await;
    assert_eq!(status, 403, "{body}");
    let refusal: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(refusal["error"], "ip_not_allowed");
    assert!(!body.contains("for the allowed"));

    // A redeploy naming other addresses moves the list.
    let moved = [
        ("name", "private"),
        ("redeploy", "true"),
        ("allowed_ips", "198.51.100.0/24"),
    ];
    let reply = deploy(&host, &session, greeter(), &moved).await;
    assert_eq!(reply.status.as_u16(), 202, "{}", reply.body);
    wait_for(&host, &id, 2, &["healthy"], ROLLOUT).await;
    let (status, _) = from_address(&host, &url, "198.51.100.7").await;
    assert_eq!(status, 200);
    let (status, _) = from_address(&host, &url, "203.0.113.9").await;
    assert_eq!(status, 403);

    // Stacks cannot be private; saying so is refused, not ignored.
    let reply = upload(
        &host,
        "/stacks/new",
        Some(session.as_str()),
        &[
            ("name", "s"),
            (
                "manifest",
                "services:\n  web:\n    port: 8080\n    expose: true\n",
            ),
            ("allowed_ips", "203.0.113.0/24"),
        ],
        &[("web", greeter())],
    )
    .await;
    assert_error(&reply, 501, "private_deploys_unavailable");

    host.delete(&format!("/api/v1/deployments/{id}")).await;
    remove_namespace(&namespace);
}

#[tokio::test]
async fn a_paid_teams_delete_waits_for_the_emailed_confirmation() {
    let host = TestHost::start(HostOptions::only(ProviderSpec::deploy())).await;
    let namespace = namespace_of(&host);
    let email = format!("delete-{}@example.com", uuid::Uuid::new_v4().simple());
    let session = host.sign_in(&email).await.token;
    set_team_tier(&host, &email, "pro").await;
    let deploy_one = |name: &'static str| {
        let (host, session) = (&host, session.clone());
        async move {
            let reply = deploy(host, &session, greeter(), &[("name", name)]).await;
            let answer = reply.expect::<DeploymentAnswer>(202);
            (answer.id.to_string(), answer.url.expect("an app URL"))
        }
    };
    let (id, url) = deploy_one("keep-me").await;
    wait_for(&host, &id, 1, &["healthy"], ROLLOUT).await;

    // The delete waits; the app keeps serving; a second delete is refused.
    let path = format!("/api/v1/deployments/{id}");
    let reply = host.delete(&path).await;
    let pending = reply.expect::<DeletionPending>(202);
    assert_eq!(pending.deletion_status, "pending_confirmation");
    assert!(
        !reply.body.to_string().contains("del_"),
        "the token goes only by email: {}",
        reply.body
    );
    assert_error(&host.delete(&path).await, 409, "deletion_already_pending");
    let item = wait_for(&host, &id, 1, &["healthy"], ROLLOUT).await;
    assert_eq!(item.status, DeploymentStatus::Healthy);

    // The emailed link opens a page that deletes nothing by itself.
    let link = instanode_tests::mail::link_to(&email, "/confirm-deletion?t=").await;
    let page = host.get(&link).await;
    assert_eq!(page.status.as_u16(), 200);
    let token = link.split("t=").nth(1).unwrap().to_string();
    assert!(token.starts_with("del_"), "{token}");
    wait_for(&host, &id, 1, &["healthy"], ROLLOUT).await;

    // Withdrawn: the token stops working, the app stays.
    let cancel = format!("{path}/confirm-deletion");
    let reply = host.delete(&cancel).await;
    assert_eq!(
        reply.expect::<DeletionSettled>(200).deletion_status,
        "cancelled"
    );
    let confirm = |token: &str| format!("{cancel}?token={token}");
    assert_error(
        &host.post_json(&confirm(&token), Value::Null).await,
        410,
        "deletion_token_invalid",
    );
    assert_error(&host.delete(&cancel).await, 404, "no_pending_deletion");

    // Asked again and confirmed with the new token: gone. A wrong or late token does nothing.
    assert_eq!(host.delete(&path).await.status.as_u16(), 202);
    let link = instanode_tests::mail::link_to(&email, "/confirm-deletion?t=").await;
    let token = link.split("t=").nth(1).unwrap().to_string();
    assert_error(
        &host.post_json(&confirm("del_wrong"), Value::Null).await,
        410,
        "deletion_token_invalid",
    );
    assert_error(
        &host.post_json(&cancel, Value::Null).await,
        400,
        "missing_token",
    );
    // The person opens the link in a browser and clicks the button.
    let report = confirm_in_browser(&format!("{}{link}", host.url)).await;
    assert_eq!(report["status"], 200, "{report}");
    assert!(
        report["pending"].as_str().unwrap().contains("keep-me"),
        "{report}"
    );
    assert!(
        report["result"].as_str().unwrap().contains("was deleted"),
        "{report}"
    );
    assert!(
        report["reopened"]
            .as_str()
            .unwrap()
            .contains("not valid any more"),
        "{report}"
    );
    assert_eq!(report["reopened_has_button"], false, "{report}");
    // A second click finds nothing left to delete.
    let late = host.post_json(&confirm(&token), Value::Null).await;
    assert_error(&late, 410, "resource_deleted");
    assert_error(&host.get(&path).await, 410, "resource_deleted");
    let (status, _) = from_address(&host, &url, "203.0.113.9").await;
    assert_eq!(status, 404);

    // The skip header needs the team's key made for it; then the delete is immediate.
    let (second, _) = deploy_one("skip-me").await;
    let key_for = |skip: bool| {
        let (host, session) = (&host, session.clone());
        async move {
            let body = json!({"name": "ci", "skip_delete_confirmation": skip});
            let reply = post(host, "/api/v1/auth/api-keys", body, Some(session.as_str())).await;
            let created = reply.expect::<ApiKeyCreated>(201);
            assert_eq!(created.skip_delete_confirmation, skip);
            created.key
        }
    };
    let (plain, skipping) = (key_for(false).await, key_for(true).await);
    let skip_with = |key: &str| {
        let (host, path, bearer) = (
            &host,
            format!("/api/v1/deployments/{second}"),
            format!("Bearer {key}"),
        );
        async move {
            host.delete_with(
                &path,
                &[
                    ("authorization", &bearer),
                    ("x-skip-email-confirmation", "yes"),
                ],
            )
            .await
        }
    };
    assert_error(
        &skip_with(&plain).await,
        403,
        "skip_confirmation_not_allowed",
    );
    let reply = skip_with(&skipping).await;
    let deleted = reply.expect::<DeploymentDeleted>(200);
    assert_eq!(deleted.deletion_status, "confirmed");
    remove_namespace(&namespace);
}

/// Runs `tests/browser/confirm_deletion.mjs` on `link`; its JSON report.
async fn confirm_in_browser(link: &str) -> Value {
    let script =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("browser/confirm_deletion.mjs");
    let out = tokio::process::Command::new("node")
        .arg(script)
        .env("LINK", link)
        .env("CHROMIUM", instanode_tests::env("INSTANODE_TEST_CHROMIUM"))
        .env(
            "PLAYWRIGHT_DIR",
            instanode_tests::env("INSTANODE_TEST_PLAYWRIGHT_DIR"),
        )
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the browser run failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap()
}

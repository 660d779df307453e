//! Claims and accounts against a real SMTP server and real PostgreSQL: an anonymous
//! database is claimed by email, the emailed link signs the user in, the team sees the
//! database and its URL keeps working; sessions end at logout; API keys until revoked.

use instanode::api::schema::{
    ApiKeyList, ApiKeyRevoked, BillingApplied, BillingSkipped, ClaimPreview, ClaimSent,
    CliApproval, CliApproved, CliSession, ClockMoved, Created, LinkSent, Me, Resource,
    ResourceCredentials, ResourceList, SignedOut,
};
use instanode::store::ResourceStatus;
use instanode::tenancy::tokens::TokenSigner;
use instanode_tests::mail::link_sent_to;
use instanode_tests::{Account, HostOptions, Reply, TestHost, assert_error};
use serde_json::{Value, json};
use sqlx::Connection;

/// The secret test hosts sign tokens with (see the harness's config).
const JWT_SECRET: &[u8] = b"test-jwt-secret-0123456789";

fn new_email() -> String {
    format!("user-{}@example.com", uuid::Uuid::new_v4().simple())
}

async fn with_bearer(host: &TestHost, path: &str, token: &str) -> Reply {
    host.get_with(path, &[("authorization", &format!("Bearer {token}"))])
        .await
}

/// Follows the emailed link; the account it signs in.
async fn follow_link(host: &TestHost, email: &str) -> Account {
    let link = link_sent_to(email).await;
    let account = host.follow_link(email).await;
    // A link works once.
    assert_error(&host.get(&link).await, 410, "link_invalid");
    account
}

/// Asks for a sign-in link and follows it.
async fn follow_link_after_start(host: &TestHost, email: &str) -> Account {
    host.post_json("/auth/email/start", json!({ "email": email }))
        .await
        .expect::<LinkSent>(202);
    follow_link(host, email).await
}

#[tokio::test]
async fn a_claimed_database_moves_to_the_new_account_and_keeps_working() {
    let host = TestHost::start(HostOptions::default()).await;
    let network = [("x-forwarded-for", "10.77.1.9")];
    let reply = host
        .post(
            "/db/new",
            Some("application/json"),
            br#"{"name":"keep-me"}"#.to_vec(),
            &network,
        )
        .await;
    let db: Created = reply.expect(201);
    let jwt = db.upgrade_jwt.as_str();
    let token = db.token.to_string();
    let token = token.as_str();
    assert!(db.upgrade.contains("/start?t="));

    // The landing page and the dry run change nothing.
    let page = host
        .http
        .get(format!("{}/start?t={jwt}", host.url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.text().await.unwrap().contains("/claim"));
    let preview = host.get(&format!("/claim/preview?t={jwt}")).await;
    let previewed: ClaimPreview = preview.expect(200);
    assert!(previewed.token_valid);
    let items = &previewed.items;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].name, "keep-me");
    assert_eq!(items[0].kind, "db");
    // The whole answer's text, whatever fields it has.
    assert!(
        !preview.body.to_string().contains(token),
        "a preview names no token: {}",
        preview.body
    );

    let email = new_email();
    let reply = host
        .post_json(
            "/claim",
            json!({ "token": jwt, "email": email.to_uppercase() }),
        )
        .await;
    reply.expect::<ClaimSent>(200);
    // Single use, even before the link is followed.
    let again = host
        .post_json("/claim", json!({ "token": jwt, "email": email }))
        .await;
    assert_error(&again, 409, "already_claimed");
    let preview = host.get(&format!("/claim/preview?t={jwt}")).await;
    assert!(preview.json::<ClaimPreview>().already_claimed);

    let account = follow_link(&host, &email).await;
    assert_eq!(account.session.claimed_resources, 1);
    assert_eq!(account.session.email, email.as_str());
    let session_token = account.token.as_str();

    let me = with_bearer(&host, "/auth/me", session_token).await;
    assert_eq!(me.expect::<Me>(200).tier, "free");
    let listed = with_bearer(&host, "/api/v1/resources", session_token).await;
    let list: ResourceList = listed.expect(200);
    let items = &list.items;
    assert_eq!(items.len(), 1, "{}", listed.body);
    assert_eq!(items[0].token, db.token);
    assert_eq!(items[0].tier, "free");
    // A field the type does not have: only the raw answer can show it is absent.
    assert!(
        listed.body["items"][0].get("connection_url").is_none(),
        "no URLs in lists"
    );

    // The owner reads the credentials; they are the ones handed out, and still work.
    let creds = with_bearer(
        &host,
        &format!("/api/v1/resources/{token}/credentials"),
        session_token,
    )
    .await;
    assert_eq!(
        creds.expect::<ResourceCredentials>(200).connection_url,
        db.connection_url
    );
    let mut conn = sqlx::PgConnection::connect(&db.connection_url)
        .await
        .expect("the original URL still works");
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(one, 1);

    // Someone else's account sees neither the resource nor its credentials.
    let stranger = new_email();
    let other = follow_link_after_start(&host, &stranger).await;
    let other_token = other.token.as_str();
    let listed = with_bearer(&host, "/api/v1/resources", other_token).await;
    assert_eq!(listed.json::<ResourceList>().total, 0);
    let creds = with_bearer(
        &host,
        &format!("/api/v1/resources/{token}/credentials"),
        other_token,
    )
    .await;
    assert_error(&creds, 404, "resource_not_found");
    let rotate = format!("/api/v1/resources/{token}/rotate-credentials");
    let reply = host.post(&rotate, None, vec![], &[other.auth()]).await;
    assert_error(&reply, 404, "resource_not_found");

    // Rotation: a new password for the same data; the old one stops working.
    conn.close().await.unwrap();
    let reply = host.post(&rotate, None, vec![], &[account.auth()]).await;
    let rotated: ResourceCredentials = reply.expect(200);
    assert_eq!(rotated.rotated, Some(true));
    let new_url = rotated.connection_url;
    assert_ne!(new_url, db.connection_url);
    assert!(
        sqlx::PgConnection::connect(&db.connection_url)
            .await
            .is_err(),
        "the old password is refused"
    );
    let mut conn = sqlx::PgConnection::connect(&new_url)
        .await
        .expect("the new URL works");
    sqlx::query("SELECT 1").execute(&mut conn).await.unwrap();
    let creds = with_bearer(
        &host,
        &format!("/api/v1/resources/{token}/credentials"),
        session_token,
    )
    .await;
    assert_eq!(creds.json::<ResourceCredentials>().connection_url, new_url);
}

#[tokio::test]
async fn bad_claims_are_refused_with_their_codes() {
    let host = TestHost::start(HostOptions::default()).await;
    let db = host.provision("db", "claim-me").await;
    let jwt = db.upgrade_jwt.clone();

    assert_error(
        &host
            .post_json("/claim", json!({ "email": new_email() }))
            .await,
        400,
        "missing_token",
    );
    assert_error(
        &host.post_json("/claim", json!({ "token": jwt })).await,
        400,
        "missing_email",
    );
    for bad in [
        "not-an-email",
        "a b@example.com",
        "ada@localhost",
        "ada@example..com",
        "@example.com",
    ] {
        let reply = host
            .post_json("/claim", json!({ "token": jwt, "email": bad }))
            .await;
        assert_error(&reply, 400, "invalid_email_format");
    }
    let too_long = format!("{}@{}.com", "a".repeat(64), "b".repeat(190));
    let reply = host
        .post_json("/claim", json!({ "token": jwt, "email": too_long }))
        .await;
    assert_error(&reply, 400, "invalid_email_format");

    // Tampered, foreign, expired.
    let mut tampered = jwt.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let resource = db.token;
    let foreign = TokenSigner::new(b"some-other-server-secret-123")
        .upgrade_token(resource, "db", chrono::Utc::now())
        .unwrap();
    let expired = TokenSigner::new(JWT_SECRET)
        .upgrade_token(
            resource,
            "db",
            chrono::Utc::now() - chrono::Duration::days(8),
        )
        .unwrap();
    for token in [tampered, foreign, expired, "garbage".to_string()] {
        let reply = host
            .post_json("/claim", json!({ "token": token, "email": new_email() }))
            .await;
        assert_error(&reply, 400, "invalid_token");
        let reply = host.get(&format!("/claim/preview?t={token}")).await;
        assert_error(&reply, 400, "invalid_token");
    }
    assert_error(&host.get("/claim/preview").await, 400, "missing_token");

    // `jwt` is the older name of `token`; `token` wins when both come.
    let reply = host
        .post_json(
            "/claim",
            json!({ "jwt": "garbage", "token": jwt, "email": new_email() }),
        )
        .await;
    reply.expect::<ClaimSent>(200);
}

#[tokio::test]
async fn sessions_end_at_logout_and_api_keys_when_revoked() {
    let host = TestHost::start(HostOptions {
        providers: vec![],
        ..HostOptions::default()
    })
    .await;
    let email = new_email();
    let session = follow_link_after_start(&host, &email).await;
    let token = session.token.clone();
    assert_eq!(
        with_bearer(&host, "/auth/me", &token).await.status.as_u16(),
        200
    );

    // An API key works like the session, until revoked.
    let auth = session.bearer.clone();
    let laptop = host.api_key(&session, "laptop").await;
    let key = laptop.token.clone();
    let key_id = laptop.key.as_ref().expect("an API key").id;
    let me = with_bearer(&host, "/auth/me", &key).await;
    assert_eq!(me.expect::<Me>(200).email, email.as_str());
    let keys = with_bearer(&host, "/api/v1/auth/api-keys", &token).await;
    assert_eq!(keys.json::<ApiKeyList>().items[0].name, "laptop");
    assert!(!keys.body.to_string().contains(&key), "keys are shown once");
    let revoke = host
        .delete_with(
            &format!("/api/v1/auth/api-keys/{key_id}"),
            &[("authorization", &auth)],
        )
        .await;
    assert!(revoke.expect::<ApiKeyRevoked>(200).revoked);
    assert_error(
        &with_bearer(&host, "/auth/me", &key).await,
        401,
        "unauthorized",
    );

    // Logout revokes the session everywhere; so does expiry, or a forged token.
    let reply = host
        .post("/auth/logout", None, vec![], &[("authorization", &auth)])
        .await;
    reply.expect::<SignedOut>(200);
    assert_error(
        &with_bearer(&host, "/auth/me", &token).await,
        401,
        "unauthorized",
    );
    assert_error(
        &with_bearer(&host, "/api/v1/resources", &token).await,
        401,
        "unauthorized",
    );

    // Signing out of the dashboard revokes the session too, not only the cookie.
    let browser = follow_link_after_start(&host, &email).await.token;
    let reply = host
        .post(
            "/dashboard/logout",
            Some("application/x-www-form-urlencoded"),
            vec![],
            &[
                ("cookie", &format!("instanode_session={browser}")),
                ("origin", &host.url),
            ],
        )
        .await;
    // 303 to the sign-in page, which the client follows.
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.body);
    assert_error(
        &with_bearer(&host, "/auth/me", &browser).await,
        401,
        "unauthorized",
    );

    let user = session.session.user_id;
    let team = session.session.team_id;
    let (expired, _) = TokenSigner::new(JWT_SECRET)
        .session_token(
            user,
            team,
            &email,
            chrono::Utc::now() - chrono::Duration::hours(25),
        )
        .unwrap();
    assert_error(
        &with_bearer(&host, "/auth/me", &expired).await,
        401,
        "unauthorized",
    );
    let (forged, _) = TokenSigner::new(b"some-other-server-secret-123")
        .session_token(user, team, &email, chrono::Utc::now())
        .unwrap();
    assert_error(
        &with_bearer(&host, "/auth/me", &forged).await,
        401,
        "unauthorized",
    );
    // An upgrade token is not a session.
    let upgrade = TokenSigner::new(JWT_SECRET)
        .upgrade_token(uuid::Uuid::new_v4(), "db", chrono::Utc::now())
        .unwrap();
    assert_error(
        &with_bearer(&host, "/auth/me", &upgrade).await,
        401,
        "unauthorized",
    );
    assert_error(&host.get("/auth/me").await, 401, "unauthorized");

    // Signing in again gives a fresh session for the same account.
    let again = follow_link_after_start(&host, &email).await;
    assert_eq!(again.session.user_id, session.session.user_id);
    assert_error(
        &host
            .post_json("/auth/email/start", json!({ "email": "nope" }))
            .await,
        400,
        "invalid_email_format",
    );
}

#[tokio::test]
async fn the_cli_device_flow_hands_over_an_api_key_once() {
    let host = TestHost::start(HostOptions {
        providers: vec![],
        ..HostOptions::default()
    })
    .await;
    let cli: CliSession = host.post_json("/auth/cli", json!({})).await.expect(201);
    assert_eq!(cli.expires_in, 600);
    let id = cli.session_id;
    let page = host.http.get(&cli.auth_url).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let poll = format!("/auth/cli/{id}");
    assert_eq!(host.get(&poll).await.status.as_u16(), 202);
    let unknown = format!("/auth/cli/{}", uuid::Uuid::new_v4());
    assert_error(&host.get(&unknown).await, 404, "session_not_found");
    let approve = format!("/auth/cli/{id}/approve");
    assert_error(
        &host.post_json(&approve, json!({})).await,
        401,
        "unauthorized",
    );

    // The browser: sign in, approve.
    let email = new_email();
    host.post_json("/auth/email/start", json!({ "email": email }))
        .await;
    let session = follow_link(&host, &email).await;
    let auth = session.bearer.clone();
    let reply = host
        .post(&approve, None, vec![], &[("authorization", &auth)])
        .await;
    assert!(reply.expect::<CliApproval>(200).approved);

    // The CLI collects its key once; the key works.
    let approved: CliApproved = host.get(&poll).await.expect(200);
    assert_eq!(approved.email, email.as_str());
    let key = approved.api_key.as_str();
    assert_eq!(
        with_bearer(&host, "/auth/me", key).await.status.as_u16(),
        200
    );
    assert_error(&host.get(&poll).await, 404, "session_not_found");
    let reply = host
        .post(&approve, None, vec![], &[("authorization", &auth)])
        .await;
    assert_error(&reply, 404, "session_not_found");

    // Emailed links last 15 minutes.
    let late = new_email();
    host.post_json("/auth/email/start", json!({ "email": late }))
        .await;
    let link = link_sent_to(&late).await;
    host.advance_clock(16 * 60).await;
    assert_error(&host.get(&link).await, 410, "link_invalid");
}

const BILLING_SECRET: &str = "billing-secret-for-tests-0123";

fn signed(body: &Value) -> (Vec<u8>, String) {
    use hmac::{Hmac, Mac};
    let bytes = body.to_string().into_bytes();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(BILLING_SECRET.as_bytes()).unwrap();
    mac.update(&bytes);
    (
        bytes,
        format!("sha256={}", hex::encode(mac.finalize().into_bytes())),
    )
}

/// The host's clock (tests move it), in Unix seconds.
async fn host_now(host: &TestHost) -> i64 {
    host.post_json("/testing/clock", json!({ "seconds": 0 }))
        .await
        .expect::<ClockMoved>(200)
        .now
        .timestamp()
}

async fn connection_limit(host: &TestHost, token: &str) -> i32 {
    let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM resources WHERE token = $1::uuid")
        .bind(token)
        .fetch_one(&mut host.metadata().await)
        .await
        .unwrap();
    sqlx::query_scalar("SELECT rolconnlimit FROM pg_roles WHERE rolname = $1")
        .bind(format!("usr_{}", id.simple()))
        .fetch_one(&mut instanode_tests::superuser("postgres").await)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_paid_tier_keeps_resources_and_raises_their_limits() {
    let host = TestHost::start(HostOptions {
        extra: format!("[billing]\nwebhook_secret = {BILLING_SECRET:?}\n"),
        ..HostOptions::default()
    })
    .await;
    let db = host.provision("db", "grows-up").await;
    let token = db.token.to_string();
    let email = new_email();
    let jwt = &db.upgrade_jwt;
    host.post_json("/claim", json!({ "token": jwt, "email": email }))
        .await;
    let session = follow_link(&host, &email).await;
    let session_token = session.token.clone();
    assert_eq!(connection_limit(&host, &token).await, 2);

    // The operator's command.
    let output = tokio::process::Command::new(std::env::var("INSTANODE_BIN").unwrap())
        .args([
            "--config",
            host.dir.join("instanode.toml").to_str().unwrap(),
        ])
        .args(["admin", "set-tier", "--team", &email, "--tier", "hobby"])
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["resources"], 1, "{report}");

    let listed = with_bearer(&host, "/api/v1/resources", &session_token).await;
    let item = &listed.json::<ResourceList>().items[0];
    assert_eq!(item.tier, "hobby");
    assert!(item.expires_at.is_none(), "{item:?}");
    assert_eq!(connection_limit(&host, &token).await, 8);
    let me = with_bearer(&host, "/auth/me", &session_token).await;
    assert_eq!(me.json::<Me>().tier, "hobby");

    // Past the anonymous lifetime, the reaper leaves it alone.
    host.advance_clock(25 * 3600).await;
    host.reap().await;
    let reply = host.get(&format!("/api/v1/resources/{token}")).await;
    assert_eq!(
        reply.json::<Resource>().status,
        ResourceStatus::Active,
        "{}",
        reply.body
    );
    let mut conn = sqlx::PgConnection::connect(&db.connection_url)
        .await
        .expect("still works");
    sqlx::query("SELECT 1").execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();

    // Billing events must be signed; a cancellation brings the free tier's lifetime back.
    let now = host_now(&host).await;
    let event = json!({ "id": "evt-cancel-1", "created": now, "event": "subscription.cancelled", "team": email });
    let (body, signature) = signed(&event);
    let reply = host
        .post(
            "/billing/webhook",
            Some("application/json"),
            body.clone(),
            &[("x-instanode-signature", "sha256=00")],
        )
        .await;
    assert_error(&reply, 401, "signature_invalid");
    let send = |event: Value| {
        let host = &host;
        async move {
            let (body, signature) = signed(&event);
            host.post(
                "/billing/webhook",
                Some("application/json"),
                body,
                &[("x-instanode-signature", &signature)],
            )
            .await
        }
    };
    // Without an id and a creation time, or created long ago: refused.
    let reply = send(json!({ "event": "subscription.cancelled", "team": email })).await;
    assert_error(&reply, 400, "invalid_event");
    let reply = send(json!({ "id": "evt-old", "created": now - 3600, "event": "subscription.cancelled", "team": email })).await;
    assert_error(&reply, 400, "event_expired");
    let reply = host
        .post(
            "/billing/webhook",
            Some("application/json"),
            body,
            &[("x-instanode-signature", &signature)],
        )
        .await;
    let applied: BillingApplied = reply.expect(200);
    assert!(applied.applied, "{}", reply.body);
    assert_eq!(applied.tier, "free");
    assert_eq!(connection_limit(&host, &token).await, 2);
    // A captured activation replayed under its id, or an older one under a new id, changes
    // nothing: the team stays on the free tier.
    let replayed = send(event.clone()).await.json::<BillingSkipped>();
    assert!(!replayed.applied, "{replayed:?}");
    assert_eq!(replayed.reason, "duplicate");
    let late = send(json!({ "id": "evt-activate-0", "created": now - 60, "event": "subscription.activated", "team": email, "tier": "hobby" })).await;
    assert!(!late.expect::<BillingSkipped>(200).applied, "{}", late.body);
    assert_eq!(connection_limit(&host, &token).await, 2);
    host.reap().await;
    let reply = host.get(&format!("/api/v1/resources/{token}")).await;
    assert_error(&reply, 410, "resource_expired");
}

#[tokio::test]
async fn signed_in_callers_provision_for_their_team_under_its_caps() {
    let host = TestHost::start(HostOptions::default()).await;
    let network = [("x-forwarded-for", "10.78.3.4")];
    let anonymous = host
        .post(
            "/db/new",
            Some("application/json"),
            br#"{"name":"anon"}"#.to_vec(),
            &network,
        )
        .await;
    assert_eq!(anonymous.status.as_u16(), 201, "{}", anonymous.body);
    let again = host
        .post(
            "/db/new",
            Some("application/json"),
            br#"{"name":"anon-2"}"#.to_vec(),
            &network,
        )
        .await;
    assert_error(&again, 402, "resource_count_limit_exceeded");

    let email = new_email();
    host.post_json("/auth/email/start", json!({ "email": email }))
        .await;
    let session = follow_link(&host, &email).await;
    let auth = session.bearer.clone();
    let headers = [
        ("x-forwarded-for", "10.78.3.4"),
        ("authorization", auth.as_str()),
    ];
    // The network's anonymous cap does not apply to the team.
    let reply = host
        .post(
            "/db/new",
            Some("application/json"),
            br#"{"name":"team-db"}"#.to_vec(),
            &headers,
        )
        .await;
    assert_eq!(reply.expect::<Created>(201).tier, "free");
    let listed = with_bearer(&host, "/api/v1/resources", &session.token)
        .await
        .json::<ResourceList>();
    assert_eq!(listed.total, 1, "{listed:?}");
    assert_eq!(listed.items[0].name, "team-db");
    // The team's own cap does (free: one per kind).
    let reply = host
        .post(
            "/db/new",
            Some("application/json"),
            br#"{"name":"team-db-2"}"#.to_vec(),
            &headers,
        )
        .await;
    assert_error(&reply, 402, "resource_count_limit_exceeded");
    // A token that is not a session is refused, not taken as anonymous.
    let reply = host
        .post(
            "/db/new",
            Some("application/json"),
            br#"{"name":"x"}"#.to_vec(),
            &[("authorization", "Bearer not-a-session")],
        )
        .await;
    assert_error(&reply, 401, "unauthorized");
}

/// A team's resources made from a network do not count against that network's anonymous
/// caps: the anonymous `db` is still allowed after a signed-in user made one.
#[tokio::test]
async fn team_resources_do_not_use_up_the_networks_anonymous_caps() {
    let host = TestHost::start(HostOptions::default()).await;
    let account = host.new_account("caps").await;
    let network = ("x-forwarded-for", "198.51.100.90");
    let bearer = account.bearer;
    let json = Some("application/json");
    let team_db = host
        .post(
            "/db/new",
            json,
            br#"{"name":"team-db"}"#.to_vec(),
            &[network, ("authorization", &bearer)],
        )
        .await;
    let team_db: Created = team_db.expect(201);
    let anonymous = host
        .post(
            "/db/new",
            json,
            br#"{"name":"anon-db"}"#.to_vec(),
            &[network],
        )
        .await;
    assert_ne!(anonymous.expect::<Created>(201).token, team_db.token);
    // The anonymous cap itself still holds.
    let second = host
        .post(
            "/db/new",
            json,
            br#"{"name":"anon-db-2"}"#.to_vec(),
            &[network],
        )
        .await;
    assert_error(&second, 402, "resource_count_limit_exceeded");
}

//! The dashboard's pages as a browser gets them: sign-in by an emailed link (a cookie
//! session), the team's resources with usage bars and lifetimes, a deployment's page.

use instanode::api::schema::{Created, Resource, ResourceCredentials, StackCreated};
use instanode_tests::deploy::{namespace_of, remove_namespace, upload};
use instanode_tests::mail::link_sent_to;
use instanode_tests::{HostOptions, ProviderSpec, TestHost, env};
use serde_json::json;
use sqlx::Connection;

/// A client that behaves like a browser following a link: asks for HTML, does not follow
/// redirects (so the test sees them).
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn an_emailed_link_signs_a_browser_in_and_the_overview_shows_the_teams_resources() {
    let host = TestHost::start(HostOptions::default()).await;
    let browser = browser();
    let html = |path: &str| {
        browser
            .get(format!("{}{path}", host.url))
            .header("accept", "text/html,application/xhtml+xml")
    };

    // Without a session: the sign-in form.
    let page = html("/dashboard").send().await.unwrap();
    assert_eq!(page.status(), 200);
    let body = page.text().await.unwrap();
    assert!(body.contains("Sign in to instanode"), "{body}");
    assert!(body.contains("/auth/email/start"), "{body}");

    // The emailed link, opened by a browser: a cookie session and a redirect.
    let email = format!("dash-{}@example.com", uuid::Uuid::new_v4().simple());
    host.post_json("/auth/email/start", json!({ "email": email }))
        .await;
    let link = link_sent_to(&email).await;
    let path = link.strip_prefix(&host.url).unwrap_or(&link).to_string();
    let signed_in = html(&path).send().await.unwrap();
    assert_eq!(signed_in.status(), 303);
    assert_eq!(signed_in.headers()["location"], "/dashboard");
    let set_cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(set_cookie.starts_with("instanode_session="), "{set_cookie}");
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    let session = set_cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("instanode_session=")
        .to_string();
    let cookie = format!("instanode_session={session}");

    // The team's database, with its usage measured.
    let created = host
        .post(
            "/db/new",
            Some("application/json"),
            br#"{"name":"dash-db"}"#.to_vec(),
            &[("authorization", &format!("Bearer {session}"))],
        )
        .await;
    let created: Created = created.expect(201);
    let token = created.token;
    host.meter().await;

    let overview = html("/dashboard/resources")
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        overview.contains(&format!("Signed in as {email}")),
        "{overview}"
    );
    let row_start = overview
        .find(&format!("data-token=\"{token}\""))
        .unwrap_or_else(|| panic!("no row for the database: {overview}"));
    let row = &overview[row_start..overview[row_start..].find("</tr>").unwrap() + row_start];
    assert!(row.contains("dash-db"), "{row}");
    assert!(row.contains(">db<"), "{row}");
    assert!(row.contains(">active<"), "{row}");
    assert!(row.contains("role=\"meter\""), "a usage bar: {row}");
    assert!(row.contains(" MB of "), "{row}");
    // The resource's credentials are never on the page.
    assert!(!overview.contains(&created.connection_url));

    // A deployment's page follows its log and status through the API.
    let page = html("/dashboard/deployments/abc-123")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("new EventSource('/deploy/' + id + '/logs')"),
        "{page}"
    );
    let refused = html("/dashboard/deployments/..%2Fadmin")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 404);

    // Signing out clears the cookie.
    let out = browser
        .post(format!("{}/dashboard/logout", host.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    assert!(
        out.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );

    // An API client following the same kind of link still gets JSON: a session.
    let account = host.new_account("api").await;
    assert!(!account.session.session_token.is_empty());
}

/// The pages the browser walk inspects (screenshots in four variants, axe-core on each).
const PAGES: [&str; 16] = [
    "sign-in",
    "overview",
    "resources",
    "resource",
    "refusal",
    "deployments",
    "deployment",
    "stack",
    "vault",
    "team",
    "settings",
    "settings-new-key",
    "claim",
    "operator-sign-in",
    "operator",
    // Inspected while signed out, so the first page is the sign-in form once more.
    "sign-in",
];

/// Headless Chromium (Debian's, driven by playwright-core) walks every page of the
/// dashboard as a team with one resource of every kind, an app and a stack: it reveals and
/// rotates credentials, deletes a resource after typing its name, follows the app's log,
/// reveals a vault secret, makes an API key and uses it as an agent would, and works the
/// claim and operator pages. Every page is screenshot at desktop and phone width in light
/// and dark (kept in the test data dir's `artifacts/dashboard-screenshots/`) and checked by
/// axe-core; any
/// console error, failed request or request to another origin fails the test.
#[tokio::test]
async fn a_browser_walks_every_page_of_the_dashboard() {
    let host = TestHost::start(HostOptions::of(vec![
        ProviderSpec::postgres(&["db", "vector"]),
        ProviderSpec::redis(),
        ProviderSpec::mongo(),
        ProviderSpec::nats(),
        ProviderSpec::spaces(),
        ProviderSpec::deploy(),
    ]))
    .await;
    let namespace = namespace_of(&host);
    // Kept after the run as the test's artifacts, one folder for the latest run.
    let shots = std::path::Path::new(&env("INSTANODE_TEST_DATA_DIR"))
        .join("artifacts")
        .join("dashboard-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();
    let marker = "built-for-the-browser-test";
    let app = instanode_tests::deploy::tarball(&[
        (
            "Dockerfile",
            &format!(
                "FROM instanode/busybox:1\nRUN echo {marker}\nCOPY index.html /www/index.html\nCMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n"
            ),
        ),
        ("index.html", "hello from the browser test"),
    ]);
    let tarball = host.dir.join("app.tar.gz");
    std::fs::write(&tarball, &app).unwrap();

    // The team: five resources made on the free tier (its daily cap; each counts down its
    // 24 hours), the database filled near its limit; then the team moves to pro (a vault,
    // room for a stack beside the app), where the last two kinds are made.
    let email = format!("browser-{}@example.com", uuid::Uuid::new_v4().simple());
    let owner = host.sign_in(&email).await;
    let mut urls: std::collections::BTreeMap<&str, String> = Default::default();
    let mut tokens: std::collections::BTreeMap<&str, uuid::Uuid> = Default::default();
    let kinds = [
        ("db", "browser-db"),
        ("vector", "browser-vectors"),
        ("cache", "browser-cache"),
        ("nosql", "browser-docs"),
        ("queue", "browser-queue"),
        ("storage", "browser-files"),
        ("webhook", "browser-hooks"),
    ];
    for (i, (kind, name)) in kinds.into_iter().enumerate() {
        if i == 5 {
            fill_near_its_limit(&urls["db"]).await;
            host.set_team_tier(&email, "pro").await;
        }
        let created: Created = host
            .post(
                &format!("/{kind}/new"),
                Some("application/json"),
                json!({ "name": name }).to_string().into_bytes(),
                &[owner.auth()],
            )
            .await
            .expect(201);
        urls.insert(kind, created.connection_url.clone());
        tokens.insert(kind, created.token);
    }
    for (env, key) in [
        ("production", "STRIPE_SECRET_KEY"),
        ("production", "SENTRY_DSN"),
        ("staging", "STRIPE_SECRET_KEY"),
    ] {
        host.put(
            &format!("/api/v1/vault/{env}/{key}"),
            json!({ "value": format!("{env}-{key}-value") })
                .to_string()
                .into_bytes(),
            &[owner.auth(), ("content-type", "application/json")],
        )
        .await
        .expect::<serde_json::Value>(201);
    }
    let manifest = "services:\n  web:\n    build: .\n    port: 8080\n    expose: true\n  worker:\n    build: .\n    port: 8080\n";
    let stack: StackCreated = upload(
        &host,
        "/stacks/new",
        Some(&owner.token),
        &[("name", "browser-stack"), ("manifest", manifest)],
        &[("web", app.clone()), ("worker", app.clone())],
    )
    .await
    .expect(202);

    let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("browser/dashboard.mjs");
    let out = tokio::process::Command::new("node")
        .arg(script)
        .env("BASE_URL", &host.url)
        .env("MAILDIR", env("INSTANODE_TEST_MAILDIR"))
        .env("EMAIL", &email)
        .env("TARBALL", &tarball)
        .env("LOG_MARKER", marker)
        .env("SHOTS", &shots)
        .env("CHROMIUM", env("INSTANODE_TEST_CHROMIUM"))
        .env("PLAYWRIGHT_DIR", env("INSTANODE_TEST_PLAYWRIGHT_DIR"))
        .env("ADMIN_TOKEN", instanode_tests::ADMIN_TOKEN)
        .env("PROVIDER", "postgres")
        .env(
            "COMPONENT",
            std::path::Path::new(&env("INSTANODE_TEST_PROVIDERS_DIR")).join("postgres.wasm"),
        )
        .env("DB_TOKEN", tokens["db"].to_string())
        .env("DOOMED_TOKEN", tokens["vector"].to_string())
        .env("DOOMED_NAME", "browser-vectors")
        .env("STACK_SLUG", &stack.slug)
        .env("VAULT_KEY", "SENTRY_DSN")
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Kept beside the screenshots, to read whole when an assertion below quotes it.
    std::fs::write(shots.join("report.json"), stdout.as_bytes()).unwrap();
    assert!(
        out.status.success(),
        "the browser run failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    let text = |key: &str| report[key].as_str().unwrap_or_default().to_string();

    // Nothing went wrong on any page: no console or script error, no failed request, nothing
    // loaded from elsewhere; axe found nothing serious, and no page scrolls sideways.
    assert_eq!(report["problems"], json!([]), "{report}");
    for name in PAGES {
        let page = &report["pages"][name];
        assert_eq!(page["findings"], json!([]), "{name}: {page}");
        for variant in ["desktop-light", "desktop-dark", "phone-light", "phone-dark"] {
            let shot = shots.join(format!("{name}-{variant}.png"));
            let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
            assert!(size > 1000, "{}: {size} bytes", shot.display());
        }
    }
    // The keyboard reaches the skip link, the brand and the navigation, each with a ring.
    let keyboard = report["keyboard"].as_array().unwrap();
    assert!(
        keyboard[0]
            .as_str()
            .unwrap()
            .starts_with("Skip to content|"),
        "{report}"
    );
    assert!(
        keyboard[2].as_str().unwrap().starts_with("Overview|"),
        "{report}"
    );
    assert!(
        keyboard
            .iter()
            .all(|k| !k.as_str().unwrap().ends_with("|none")),
        "{keyboard:?}"
    );

    // Signed in by the link; the overview counts everything and warns about the database.
    assert!(text("after_link_url").ends_with("/dashboard"), "{report}");
    assert!(text("signed_in_text").contains(&format!("Signed in as {email}")));
    assert_eq!(report["cookie_http_only"], true);
    assert_eq!(report["deploy_status"], 202, "{report}");
    let counts = text("overview_counts");
    // The cards' text runs together: figure, then label.
    for card in [
        "7resources",
        "/ 3deployments healthy",
        "1webhook receivers",
        "3vault entries",
    ] {
        assert!(counts.contains(card), "{card}: {counts}");
    }
    for kind in [
        "db", "vector", "cache", "nosql", "queue", "storage", "webhook",
    ] {
        assert!(text("overview_kinds").contains(kind), "{kind}: {report}");
    }
    assert!(text("overview_banner").contains("browser-db"), "{report}");
    let activity = text("overview_activity");
    assert!(
        activity.contains("provisioned") && activity.contains("vault write"),
        "{activity}"
    );
    assert_eq!(report["overview_charts"], 2, "{report}");

    // Resources: all seven, the filter keeps the database, whose row has its usage bar.
    assert_eq!(report["resource_rows"], 7, "{report}");
    assert_eq!(report["filtered_rows"], 1, "{report}");
    let row = text("db_row");
    assert!(row.contains("browser-db") && row.contains("MB of"), "{row}");
    assert!(row.contains("free") && row.contains("development"), "{row}");
    assert_eq!(report["db_row_meter"], 1, "{report}");
    assert_eq!(report["resource_charts"], 2, "{report}");

    // Reveal and rotate: each recorded, the old password refused after the rotation.
    assert!(
        text("history_before").contains("Nobody has revealed"),
        "{report}"
    );
    let revealed_url = postgres_url_in(&text("revealed_text"));
    let rotated_url = postgres_url_in(&text("rotated_text"));
    assert_ne!(revealed_url, rotated_url, "rotation issues a new password");
    let history = text("history_after_reveal");
    assert!(
        history.contains("reveal") && history.contains(&email) && history.contains("dashboard"),
        "{history}"
    );
    let history = text("history_after_rotate");
    assert_eq!(history.matches(&email).count(), 2, "{history}");
    assert!(history.contains("rotate"), "{history}");
    assert!(sqlx::PgConnection::connect(&rotated_url).await.is_ok());
    assert!(sqlx::PgConnection::connect(&revealed_url).await.is_err());

    // The delete: a wrong name refused with its code, the right one deleted it.
    assert_eq!(report["wrong_confirmation_status"], 400, "{report}");
    assert!(text("wrong_confirmation_text").contains("confirmation_mismatch"));
    assert!(text("after_delete_url").ends_with("/dashboard/resources"));
    assert_eq!(report["doomed_rows_after"], 0, "{report}");
    let doomed = tokens["vector"];
    let gone = host.get(&format!("/api/v1/resources/{doomed}")).await;
    assert_ne!(gone.status, 200, "{}", gone.body);

    // Deployments: the app and the stack; the app's log, env names (never values), prompts.
    let deployments = text("deployments_text");
    assert!(deployments.contains("browser-app") && deployments.contains("browser-stack"));
    assert!(text("log").contains(marker), "{report}");
    assert_eq!(report["deployment_status"], "healthy");
    let env_names = text("deployment_env");
    assert!(env_names.contains("DATABASE_URL") && env_names.contains("postgres"));
    assert!(
        env_names.contains("GREETING") && !env_names.contains("hi"),
        "{env_names}"
    );
    assert!(
        report["deployment_prompts"].as_u64().unwrap() >= 5,
        "{report}"
    );
    assert!(text("copied_prompt").contains(&format!("POST {}/deploy/new", host.url)));
    assert!(text("redeploy_notice").contains("Rebuilding"), "{report}");
    assert_eq!(text("redeploy_generation"), "2", "{report}");
    let services = text("stack_services");
    assert!(
        services.contains("web") && services.contains("worker"),
        "{services}"
    );

    // The vault: both envs as tabs, names only until a reveal, which is recorded.
    let tabs = text("vault_tabs");
    assert!(
        tabs.contains("production (2)") && tabs.contains("staging (1)"),
        "{tabs}"
    );
    let before = text("vault_text_before");
    assert!(before.contains("SENTRY_DSN") && !before.contains("production-SENTRY_DSN-value"));
    assert_eq!(text("vault_revealed"), "production-SENTRY_DSN-value");
    let mut metadata = host.metadata().await;
    let reads: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM vault_events WHERE key = 'SENTRY_DSN' AND action = 'read' AND actor = $1",
    )
    .bind(&email)
    .fetch_one(&mut metadata)
    .await
    .unwrap();
    assert_eq!(reads, 1);
    assert!(text("members").contains(&email), "{report}");
    assert!(
        text("invite_notice").contains("Invitation sent"),
        "{report}"
    );
    assert!(
        text("invitations").contains(&format!("teammate-{email}")),
        "{report}"
    );
    let link = instanode_tests::mail::link_to(&format!("teammate-{email}"), "/team/join?t=").await;
    assert!(link.starts_with("/team/join?t="), "{link}");

    // The API key: shown once and copied, used by an agent, then revoked.
    assert_eq!(text("key_prefix"), "ink_");
    assert_eq!(report["key_copied"], true, "{report}");
    assert!(text("keys_table").contains("browser agent") && text("keys_table").contains("never"));
    assert_eq!(report["key_list_status"], 200, "{report}");
    assert!(
        report["key_list_names"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "browser-db")
    );
    assert_eq!(report["key_create_status"], 201, "{report}");
    assert!(
        !text("keys_table_after_use").contains("never"),
        "last use shown: {report}"
    );
    assert!(text("revoke_notice").contains("revoked"), "{report}");
    assert_eq!(report["revoked_key_status"], 401, "{report}");

    // The claim page lists the anonymous database; the emailed link moves it.
    assert_eq!(report["anonymous_status"], 201, "{report}");
    assert_eq!(report["claim_url_status"], 200, "{report}");
    assert!(text("claim_url_claimable").contains("claim-me"), "{report}");
    assert!(text("claimable").contains("claim-me"), "{report}");
    assert!(text("claim_result").contains("link sent"), "{report}");
    assert!(text("after_claim_url").ends_with("/dashboard"), "{report}");
    assert!(text("after_claim_row").contains("claim-me"), "{report}");
    let token = text("anonymous_token");
    let claimed = host.get(&format!("/api/v1/resources/{token}")).await;
    assert_eq!(claimed.json::<Resource>().tier, "free", "{}", claimed.body);

    // The operator page: a wrong token refused; unload, then an upload brings it back.
    assert!(text("operator_wrong_token").contains("not this host's admin token"));
    assert!(text("operator_row").contains("db, vector"), "{report}");
    assert!(text("unload_notice").contains("out of service"), "{report}");
    assert!(text("unloaded_row").contains("out of service"), "{report}");
    assert!(text("reloaded_row").contains("db, vector"), "{report}");
    let postgres = host
        .provider_status("postgres")
        .await
        .expect("postgres is live");
    assert_eq!(postgres.source, "upload", "{postgres:?}");
    assert!(text("after_sign_out").contains("Sign in"), "{report}");
    remove_namespace(&namespace);
}

/// Writes about 9 MB that does not compress into the database, so the meter finds it
/// near its 10 MB limit.
async fn fill_near_its_limit(url: &str) {
    let mut db = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query("CREATE TABLE filler (chunk text)")
        .execute(&mut db)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO filler
         SELECT string_agg(md5(random()::text || piece::text), '')
         FROM generate_series(1, 9000) AS rows (n), generate_series(1, 30) AS pieces (piece)
         GROUP BY n",
    )
    .execute(&mut db)
    .await
    .unwrap();
}

/// The `postgres://` URL in a page's text.
fn postgres_url_in(text: &str) -> String {
    let start = text
        .find("postgres://")
        .unwrap_or_else(|| panic!("no postgres URL in {text}"));
    text[start..]
        .split(|c: char| c.is_whitespace())
        .next()
        .unwrap()
        .to_string()
}

/// Forms that change something need the page's token and this host as their origin; every
/// reveal and rotation, through the API or the dashboard, lands in the credential history;
/// another team's resource is not there; the operator cookie must be one the host signed.
#[tokio::test]
async fn dashboard_forms_are_guarded_and_credential_access_is_recorded() {
    let host = TestHost::start(HostOptions::default()).await;
    let browser = browser();
    let account = host.new_account("guard").await;
    let cookie = format!("instanode_session={}", account.token);
    let bearer = account.bearer.clone();
    let created = host
        .post(
            "/db/new",
            Some("application/json"),
            br#"{"name":"guarded"}"#.to_vec(),
            &[("authorization", &bearer)],
        )
        .await;
    let created: Created = created.expect(201);
    let token = created.token;
    let page_path = format!("/dashboard/resources/{token}");
    let page_url = format!("{}{page_path}", host.url);

    // Without a session the page sends the browser to the sign-in form.
    let anonymous = browser.get(&page_url).send().await.unwrap();
    assert_eq!(anonymous.status(), 303);

    // The page carries the form token; the credentials are not on it.
    let owner = Browser::of(&host, &account.token).await;
    let (_, page) = owner.get(&host, &page_path).await;
    let url = created.connection_url.as_str();
    assert!(!page.contains(url));
    let form_token = &owner.form_token;
    assert!(page.contains(form_token.as_str()), "{page}");

    let reveal = |form: String, origin: Option<String>| {
        let mut request = browser
            .post(format!("{page_url}/reveal"))
            .header("cookie", &cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send()
    };
    // No token, a wrong token, or another site's origin: refused, nothing recorded.
    for (form, origin) in [
        (String::new(), None),
        ("csrf=00112233445566778899aabbccddeeff".to_string(), None),
        (
            format!("csrf={form_token}"),
            Some("https://evil.example".to_string()),
        ),
    ] {
        let refused = reveal(form, origin).await.unwrap();
        assert_eq!(refused.status(), 403);
        let body = refused.text().await.unwrap();
        assert!(body.contains("csrf_rejected"), "{body}");
        assert!(!body.contains(url));
    }
    // The page's own form: the credentials, and the reveal recorded.
    let shown = reveal(format!("csrf={form_token}"), Some(host.url.clone()))
        .await
        .unwrap();
    let status = shown.status();
    let shown = shown.text().await.unwrap();
    assert_eq!(status, 200, "{shown}");
    assert!(shown.contains(&html_escaped(url)), "{shown}");

    // The API's reveal and rotation are recorded too.
    let api = host
        .get_with(
            &format!("/api/v1/resources/{token}/credentials"),
            &[("authorization", &bearer)],
        )
        .await;
    api.expect::<ResourceCredentials>(200);
    let rotated = host
        .post(
            &format!("/api/v1/resources/{token}/rotate-credentials"),
            None,
            Vec::new(),
            &[("authorization", &bearer)],
        )
        .await;
    rotated.expect::<ResourceCredentials>(200);
    let (_, page) = owner.get(&host, &page_path).await;
    let history = &page[page.find("id=\"history\"").expect("a history table")..];
    assert_eq!(
        history.matches("<tr>").count(),
        4,
        "header + 3 events: {history}"
    );
    assert_eq!(history.matches(">reveal<").count(), 2, "{history}");
    assert_eq!(history.matches(">rotate<").count(), 1, "{history}");
    assert_eq!(history.matches(">api<").count(), 2, "{history}");
    assert_eq!(history.matches(">dashboard<").count(), 1, "{history}");

    // Another team sees the resource as missing, and cannot reveal it.
    let stranger = Browser::of(&host, &host.new_account("other").await.token).await;
    let (status, _) = stranger.get(&host, &page_path).await;
    assert_eq!(status, 404);
    let (_, stranger_page) = stranger.get(&host, "/dashboard").await;
    assert!(!stranger_page.contains(&token.to_string()));

    // The operator page: a forged or expired cookie is not a session.
    let operator = |cookie: &str| {
        browser
            .get(format!("{}/dashboard/operator", host.url))
            .header("cookie", format!("instanode_operator={cookie}"))
            .send()
    };
    for forged in ["9999999999.00", "9999999999.zz", "1.deadbeef", "garbage"] {
        let body = operator(forged).await.unwrap().text().await.unwrap();
        assert!(body.contains("Operator sign-in"), "{forged}: {body}");
    }
    let signed = browser
        .post(format!("{}/dashboard/operator/sign-in", host.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={}", instanode_tests::ADMIN_TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), 303);
    let set_cookie = signed.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"));
    assert!(
        !set_cookie.contains(instanode_tests::ADMIN_TOKEN),
        "{set_cookie}"
    );
    let value = set_cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("instanode_operator=")
        .to_string();
    let body = operator(&value).await.unwrap().text().await.unwrap();
    assert!(body.contains("data-provider=\"postgres\""), "{body}");
    // An action without the page's token is refused and changes nothing.
    let refused = browser
        .post(format!(
            "{}/dashboard/operator/providers/postgres/unload",
            host.url
        ))
        .header("cookie", format!("instanode_operator={value}"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    assert!(host.provider_status("postgres").await.is_some());
}

/// A signed-in browser: its cookie, and the form token its pages carry.
struct Browser {
    cookie: String,
    form_token: String,
}

impl Browser {
    async fn of(host: &TestHost, session: &str) -> Self {
        let cookie = format!("instanode_session={session}");
        let page = browser()
            .get(format!("{}/dashboard/settings", host.url))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let form_token = page
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("a form token on the settings page")
            .to_string();
        Self { cookie, form_token }
    }

    async fn get(&self, host: &TestHost, path: &str) -> (u16, String) {
        let answer = browser()
            .get(format!("{}{path}", host.url))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        (answer.status().as_u16(), answer.text().await.unwrap())
    }

    /// Posts a form from this browser's own pages (its token, this host's origin).
    async fn post(&self, host: &TestHost, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
        let mut form: Vec<(&str, &str)> = vec![("csrf", &self.form_token)];
        form.extend_from_slice(fields);
        let answer = browser()
            .post(format!("{}{path}", host.url))
            .header("cookie", &self.cookie)
            .header("origin", &host.url)
            .form(&form)
            .send()
            .await
            .unwrap();
        (answer.status().as_u16(), answer.text().await.unwrap())
    }
}

/// What one team does in the dashboard never reaches another: its keys cannot be revoked,
/// its resources not deleted, its vault not listed or read, its lists not shown, by a
/// member of another team using that team's own valid session and form token.
#[tokio::test]
async fn dashboard_actions_stay_within_the_team() {
    let host = TestHost::start(HostOptions::default()).await;
    let owner = host.new_account("owner").await;
    let stranger = host.new_account("stranger").await;
    host.set_team_tier(&owner.email, "pro").await;
    host.set_team_tier(&stranger.email, "pro").await;
    let created: Created = host
        .post(
            "/db/new",
            Some("application/json"),
            br#"{"name":"owners-db"}"#.to_vec(),
            &[owner.auth()],
        )
        .await
        .expect(201);
    host.put(
        "/api/v1/vault/production/OWNERS_SECRET",
        br#"{"value":"owners-value"}"#.to_vec(),
        &[owner.auth(), ("content-type", "application/json")],
    )
    .await
    .expect::<serde_json::Value>(201);
    let owners = Browser::of(&host, &owner.token).await;
    let strangers = Browser::of(&host, &stranger.token).await;

    // The owner makes a key in the dashboard; it works, and is listed by its prefix.
    let (status, page) = owners
        .post(
            &host,
            "/dashboard/settings/api-keys",
            &[("name", "owners key")],
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let key = page
        .split("id=\"new-key-value\" tabindex=\"0\" aria-label=\"The new API key\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .expect("the new key on the page")
        .to_string();
    assert!(key.starts_with("ink_"), "{key}");
    let key_id = page
        .split("data-key-id=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_string();
    let with_key = |key: String| {
        let host = &host;
        async move {
            host.get_with(
                "/api/v1/resources",
                &[("authorization", &format!("Bearer {key}"))],
            )
            .await
            .status
        }
    };
    assert_eq!(with_key(key.clone()).await, 200);
    let (_, settings) = owners.get(&host, "/dashboard/settings").await;
    assert!(settings.contains(&format!("{}…", &key[..12])), "{settings}");
    assert!(!settings.contains(&key), "the whole key is shown once only");

    // The stranger's pages show nothing of the owner's.
    for path in [
        "/dashboard",
        "/dashboard/resources",
        "/dashboard/settings",
        "/dashboard/vault",
    ] {
        let (status, page) = strangers.get(&host, path).await;
        assert_eq!(status, 200, "{path}: {page}");
        for owners_thing in [
            "owners-db",
            "owners key",
            "OWNERS_SECRET",
            &created.token.to_string(),
        ] {
            assert!(!page.contains(owners_thing), "{path} shows {owners_thing}");
        }
    }
    // Acting on the owner's things with the stranger's own session and token: not found,
    // and nothing changes.
    let (status, page) = strangers
        .post(
            &host,
            &format!("/dashboard/settings/api-keys/{key_id}/revoke"),
            &[],
        )
        .await;
    assert_eq!(status, 404, "{page}");
    assert!(page.contains("api_key_not_found"), "{page}");
    assert_eq!(with_key(key.clone()).await, 200);
    let delete = format!("/dashboard/resources/{}/delete", created.token);
    let (status, _) = strangers
        .post(&host, &delete, &[("confirm", "owners-db")])
        .await;
    assert_eq!(status, 404);
    let (status, page) = strangers
        .post(
            &host,
            "/dashboard/vault/production/OWNERS_SECRET/reveal",
            &[],
        )
        .await;
    assert_eq!(status, 404, "{page}");
    assert!(!page.contains("owners-value"), "{page}");
    let (status, _) = strangers
        .get(&host, &format!("/dashboard/resources/{}", created.token))
        .await;
    assert_eq!(status, 404);

    // The owner's own forms need the page's token, and a delete its typed name.
    let refused = browser()
        .post(format!("{}{delete}", host.url))
        .header("cookie", &owners.cookie)
        .form(&[("confirm", "owners-db")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let (status, page) = owners.post(&host, &delete, &[("confirm", "owners")]).await;
    assert_eq!(status, 400);
    assert!(page.contains("confirmation_mismatch"), "{page}");
    let still = host
        .get(&format!("/api/v1/resources/{}", created.token))
        .await;
    assert_eq!(still.status, 200, "{}", still.body);
    let (status, _) = owners
        .post(&host, &delete, &[("confirm", "owners-db")])
        .await;
    assert_eq!(status, 303);
    let gone = host
        .get(&format!("/api/v1/resources/{}", created.token))
        .await;
    assert_ne!(gone.status, 200, "{}", gone.body);

    // The owner revokes the key: it stops working at once.
    let (status, _) = owners
        .post(
            &host,
            &format!("/dashboard/settings/api-keys/{key_id}/revoke"),
            &[],
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(with_key(key).await, 401);
}

/// `text` as the dashboard escapes it into HTML.
fn html_escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The meter's samples behind the charts stay bounded: every sample for a day, then one
/// per hour, and nothing past a week.
#[tokio::test]
async fn usage_samples_are_rolled_up_after_a_day_and_dropped_after_a_week() {
    let host = TestHost::start(HostOptions::default()).await;
    let owner = host.new_account("samples").await;
    // A tier whose resources do not expire, so the reaper leaves the database alone.
    host.set_team_tier(&owner.email, "pro").await;
    let created: Created = host
        .post(
            "/db/new",
            Some("application/json"),
            br#"{"name":"sampled"}"#.to_vec(),
            &[owner.auth()],
        )
        .await
        .expect(201);
    let mut metadata = host.metadata().await;
    let mut counts = async || -> (i64, i64) {
        sqlx::query_as(
            "SELECT count(*) FILTER (WHERE NOT hourly), count(*) FILTER (WHERE hourly)
             FROM usage_samples WHERE resource_id = $1",
        )
        .bind(created.id)
        .fetch_one(&mut metadata)
        .await
        .unwrap()
    };

    // How many points the resource page's storage chart draws, signed in afresh (the test
    // clock outruns sessions).
    let chart_points = async || -> i64 {
        let session = host.sign_in(&owner.email).await;
        let (status, page) = Browser::of(&host, &session.token)
            .await
            .get(&host, &format!("/dashboard/resources/{}", created.token))
            .await;
        assert_eq!(status, 200, "{page}");
        page.split("data-measure=\"Storage\" data-points=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .and_then(|points| points.parse().ok())
            .unwrap_or_else(|| panic!("a storage chart: {page}"))
    };

    host.meter().await;
    host.advance_clock(20 * 60).await;
    host.meter().await;
    assert_eq!(counts().await, (2, 0), "every sample of the last day");
    assert_eq!(chart_points().await, 2, "one point per sample");

    host.advance_clock(25 * 3600).await;
    host.meter().await;
    let (raw, hourly) = counts().await;
    assert_eq!(raw, 1, "only the newest sample is under a day old");
    assert!(
        (1..=2).contains(&hourly),
        "the two older ones rolled up by hour: {hourly}"
    );
    assert_eq!(
        chart_points().await,
        hourly + 1,
        "each hour, and the newest"
    );

    host.advance_clock(8 * 24 * 3600).await;
    host.meter().await;
    assert_eq!(counts().await, (1, 0), "nothing older than a week");
    assert_eq!(chart_points().await, 1);
}

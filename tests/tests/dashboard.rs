//! The dashboard's pages as a browser gets them: sign-in by an emailed link (a cookie
//! session), the team's resources with usage bars and lifetimes, a deployment's page.

use instanode_tests::deploy::{namespace_of, remove_namespace};
use instanode_tests::mail::link_sent_to;
use instanode_tests::{HostOptions, ProviderSpec, TestHost, env};
use serde_json::json;

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
    assert_eq!(created.status.as_u16(), 201, "{}", created.body);
    let token = created.body["token"].as_str().unwrap().to_string();
    host.meter().await;

    let overview = html("/dashboard")
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
    let url = created.body["connection_url"].as_str().unwrap();
    assert!(!overview.contains(url));

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

    // An API client following the same kind of link still gets JSON.
    let email = format!("api-{}@example.com", uuid::Uuid::new_v4().simple());
    host.post_json("/auth/email/start", json!({ "email": email }))
        .await;
    let reply = host.get(&link_sent_to(&email).await).await;
    assert_eq!(reply.status.as_u16(), 200);
    assert!(reply.body["session_token"].is_string());
}

/// Headless Chromium (Debian's, driven by playwright-core) signs in through the emailed
/// link, sees its database with a usage bar, and watches a deployment's log go live.
/// Screenshots are kept in the test host's folder (`screenshots/`).
#[tokio::test]
async fn a_browser_signs_in_sees_usage_and_follows_a_deployment_log() {
    let host = TestHost::start(HostOptions {
        providers: vec![
            ProviderSpec::postgres(&["db", "vector"]),
            ProviderSpec::deploy(),
        ],
        ..HostOptions::default()
    })
    .await;
    let namespace = namespace_of(&host);
    let shots = host.dir.join("screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let marker = "built-for-the-browser-test";
    let tarball = host.dir.join("app.tar.gz");
    std::fs::write(
        &tarball,
        instanode_tests::deploy::tarball(&[
            (
                "Dockerfile",
                &format!(
                    "FROM instanode/busybox:1\nRUN echo {marker}\nCOPY index.html /www/index.html\nCMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n"
                ),
            ),
            ("index.html", "hello from the browser test"),
        ]),
    )
    .unwrap();
    let email = format!("browser-{}@example.com", uuid::Uuid::new_v4().simple());
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
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the browser run failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();

    assert!(
        report["after_link_url"]
            .as_str()
            .unwrap()
            .ends_with("/dashboard"),
        "{report}"
    );
    assert!(
        report["signed_in_text"]
            .as_str()
            .unwrap()
            .contains(&format!("Signed in as {email}")),
        "{report}"
    );
    assert_eq!(report["cookie_http_only"], true);
    assert_eq!(report["db_status"], 201, "{report}");
    assert_eq!(report["deploy_status"], 202, "{report}");
    let row = report["db_row"].as_str().unwrap();
    assert!(row.contains("browser-db") && row.contains("MB of"), "{row}");
    assert_eq!(report["db_row_meter"], 1, "{report}");
    assert!(report["log"].as_str().unwrap().contains(marker), "{report}");
    assert_eq!(report["deployment_status"], "healthy");
    for shot in ["1-sign-in.png", "2-overview.png", "3-deployment.png"] {
        let size = std::fs::metadata(shots.join(shot))
            .map(|m| m.len())
            .unwrap_or(0);
        assert!(size > 1000, "{shot}: {size} bytes");
    }
    remove_namespace(&namespace);
}

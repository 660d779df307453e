//! The docs agents read are served by the host itself and name its own URLs.

use instanode_tests::{HostOptions, TestHost, assert_error};

/// Every agent-facing route (`{x}` marks a path parameter); `/llms.txt` must explain each.
const ROUTES: &[&str] = &[
    "/db/new",
    "/vector/new",
    "/cache/new",
    "/nosql/new",
    "/queue/new",
    "/storage/new",
    "/webhook/new",
    "/storage/{token}/presign",
    "/webhook/receive/",
    "/api/v1/webhooks/{token}/requests",
    "/deploy/new",
    "/deploy/{id}/logs",
    "/deploy/{id}/redeploy",
    "/api/v1/deployments/{id}",
    "/api/v1/deployments/{id}/events",
    "/stacks/new",
    "/api/v1/stacks/{slug}",
    "/api/v1/resources",
    "/api/v1/resources/{token}",
    "/api/v1/resources/{token}/credentials",
    "/api/v1/resources/{token}/rotate-credentials",
    "/api/v1/capabilities",
    "/claim/preview",
    "/claim",
    "/auth/email/start",
    "/auth/email/callback",
    "/auth/me",
    "/auth/logout",
    "/auth/cli",
    "/api/v1/auth/api-keys",
    "/healthz",
    "/readyz",
];

async fn text(host: &TestHost, path: &str) -> (u16, String, String) {
    let response = host
        .http
        .get(format!("{}{path}", host.url))
        .send()
        .await
        .expect("request reaches the host");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (status, content_type, response.text().await.unwrap())
}

/// A route written with `{x}` parameters matches its text with any parameter name.
fn mentions(doc: &str, route: &str) -> bool {
    let fixed: Vec<&str> = route
        .split('{')
        .map(|p| p.split('}').next_back().unwrap())
        .collect();
    doc.lines().any(|line| {
        let mut at = 0;
        fixed.iter().all(|part| match line[at..].find(part) {
            Some(found) => {
                at += found + part.len();
                true
            }
            None => false,
        })
    })
}

#[tokio::test]
async fn llms_txt_describes_this_host_and_every_route() {
    let host = TestHost::start(HostOptions::default()).await;
    let (status, content_type, doc) = text(&host, "/llms.txt").await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    assert!(doc.starts_with("# "), "an llms.txt opens with an H1");
    assert!(
        doc.contains(&format!("{}/db/new", host.url)),
        "names this host's URL"
    );
    assert!(!doc.contains("{public_url}") && !doc.contains("{apps_url}"));
    assert!(doc.contains("agent_action") && doc.contains("request_id"));
    let missing: Vec<_> = ROUTES.iter().filter(|r| !mentions(&doc, r)).collect();
    assert!(missing.is_empty(), "llms.txt does not explain {missing:?}");
}

#[tokio::test]
async fn docs_pages_are_served_as_markdown() {
    let host = TestHost::start(HostOptions::default()).await;
    let (status, content_type, page) = text(&host, "/docs/providers.md").await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/markdown"), "{content_type}");
    assert!(page.starts_with("# Writing a provider"));
    let (status, _, llms) = text(&host, "/docs/llms.md").await;
    assert_eq!(status, 200);
    assert!(llms.contains(&host.url));
    let missing = host.get("/docs/nope.md").await;
    assert_error(&missing, 404, "not_found");
}

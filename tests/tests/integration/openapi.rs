//! The OpenAPI document: served equal to the committed `openapi/openapi.json`, complete
//! (every route of the router is in it), valid OpenAPI 3.1 (openapi-spec-validator), and
//! true of the live host (schemathesis: no 5xx, no answer outside the document).
//!
//! `INSTANODE_WRITE_OPENAPI=1 cargo test -p instanode-tests --test integration openapi::` rewrites the
//! committed file from the served one; `INSTANODE_SCHEMATHESIS_SEED` and
//! `INSTANODE_SCHEMATHESIS_EXAMPLES` (default 1 and 12) widen the campaign.

use std::path::PathBuf;

use instanode::api::schema::Created;
use instanode_tests::{HostOptions, TestHost, env, python};
use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn committed_path() -> PathBuf {
    repo().join("openapi/openapi.json")
}

async fn served(host: &TestHost) -> Value {
    let reply = host.get("/openapi.json").await;
    assert_eq!(reply.status.as_u16(), 200);
    reply.body
}

#[tokio::test]
async fn the_served_document_is_the_committed_one_and_names_every_route() {
    let host = TestHost::start(HostOptions::default()).await;
    let document = served(&host).await;
    let pretty = serde_json::to_string_pretty(&document).unwrap() + "\n";
    if std::env::var_os("INSTANODE_WRITE_OPENAPI").is_some() {
        std::fs::create_dir_all(committed_path().parent().unwrap()).unwrap();
        std::fs::write(committed_path(), &pretty).unwrap();
    }
    let committed = std::fs::read_to_string(committed_path()).unwrap_or_default();
    assert!(
        committed == pretty,
        "the served OpenAPI document differs from openapi/openapi.json; rewrite it with \
         INSTANODE_WRITE_OPENAPI=1 cargo test -p instanode-tests --test integration openapi::"
    );

    // Every route the router declares is documented (test-only and catch-all routes aside).
    let paths = document["paths"].as_object().unwrap();
    let mut missing = Vec::new();
    for file in [
        "host/src/api/mod.rs",
        "host/src/api/admin.rs",
        "host/src/api/mcp/mod.rs",
        "host/src/api/dashboard/mod.rs",
    ] {
        let source = std::fs::read_to_string(repo().join(file)).unwrap();
        for route in source.split(".route(").skip(1) {
            let Some(path) = route
                .trim_start()
                .strip_prefix('"')
                .and_then(|r| r.split('"').next())
            else {
                continue;
            };
            if path.starts_with("/testing/") || path.contains("{*") {
                continue;
            }
            if !paths.contains_key(path) {
                missing.push(format!("{file}: {path}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "routes without an operation: {missing:?}"
    );

    // Valid OpenAPI 3.1.
    let out = python(
        "import json, sys\n\
         from openapi_spec_validator import validate\n\
         from openapi_spec_validator.validation import OpenAPIV31SpecValidator\n\
         validate(json.load(open(sys.argv[1])), cls=OpenAPIV31SpecValidator)\n\
         print('valid')",
        &[committed_path().to_str().unwrap()],
    );
    assert_eq!(out.trim(), "valid");
}

#[tokio::test]
async fn schemathesis_finds_no_server_error_and_no_answer_outside_the_document() {
    // A rate limit this run never reaches, so every operation's own logic is exercised.
    let host = TestHost::start(HostOptions {
        extra: "rate_limit_per_minute = 1000000\n".into(),
        ..HostOptions::default()
    })
    .await;
    let spec = host.dir.join("openapi.json");
    std::fs::write(&spec, serde_json::to_vec(&served(&host).await).unwrap()).unwrap();

    // As an anonymous caller, then as a signed-in team (its API key, with a resource of its
    // own), so the operations behind a bearer answer more than 401.
    schemathesis(&host, &spec, "anonymous", None, None).await;
    let key = team_api_key(&host).await;
    let created = host
        .post(
            "/db/new",
            Some("application/json"),
            br#"{"name":"team-db"}"#.to_vec(),
            &[("authorization", &format!("Bearer {key}"))],
        )
        .await;
    created.expect::<Created>(201);
    schemathesis(&host, &spec, "team", Some(&key), None).await;
    // The operator API, with the admin token.
    let admin = instanode_tests::ADMIN_TOKEN;
    schemathesis(&host, &spec, "operator", Some(admin), Some("^/admin/")).await;
}

/// Answers read back into the host's own wire types (`instanode::api::schema`), the types the
/// document is generated from.
#[tokio::test]
async fn answers_read_back_into_the_wire_types() {
    use instanode::api::schema::{
        Capabilities, ErrorBody, Liveness, Providers, Resource, ResourceList,
    };
    macro_rules! read {
        ($body:expr $(,)?) => {{
            let body: Value = $body;
            serde_json::from_value(body.clone()).unwrap_or_else(|e| panic!("{e}: {body}"))
        }};
    }
    let host = TestHost::start(HostOptions::default()).await;
    let live: Liveness = read!(host.get("/healthz").await.body);
    assert_eq!(live.service, "instanode");
    let capabilities: Capabilities = read!(host.get("/api/v1/capabilities").await.body);
    assert!(capabilities.kinds.iter().any(|k| k == "db"));

    let created: Created = host.provision("db", "typed-db").await;
    assert_eq!(
        (created.kind.as_str(), created.name.as_str()),
        ("db", "typed-db")
    );
    let resource: Resource = read!(
        host.get(&format!("/api/v1/resources/{}", created.token))
            .await
            .body
    );
    assert_eq!(resource.token, created.token);

    let refused: ErrorBody = read!(host.get("/api/v1/resources/not-a-token").await.body);
    assert_eq!(refused.error, "invalid_token");
    let unsigned: ErrorBody = read!(host.get("/api/v1/resources").await.body);
    assert_eq!(unsigned.error, "unauthorized");
    let key = team_api_key(&host).await;
    let bearer = format!("Bearer {key}");
    let listed: ResourceList = read!(
        host.get_with("/api/v1/resources", &[("authorization", &bearer)])
            .await
            .body,
    );
    assert_eq!(listed.total, listed.items.len());

    let providers: Providers = read!(
        host.get_with(
            "/admin/providers",
            &[("authorization", instanode_tests::ADMIN_BEARER)]
        )
        .await
        .body,
    );
    assert!(
        providers
            .providers
            .iter()
            .any(|p| p.kinds.iter().any(|k| k == "db"))
    );
}

/// A new account's API key, through the emailed sign-in link.
async fn team_api_key(host: &TestHost) -> String {
    let account = host.new_account("openapi").await;
    host.api_key(&account, "schemathesis").await.token
}

/// One bounded, reproducible campaign (`INSTANODE_SCHEMATHESIS_SEED` and
/// `INSTANODE_SCHEMATHESIS_EXAMPLES` widen it by hand); fails with schemathesis's report.
/// `only` restricts the run to the paths matching a regular expression.
async fn schemathesis(
    host: &TestHost,
    spec: &std::path::Path,
    label: &str,
    key: Option<&str>,
    only: Option<&str>,
) {
    let program = PathBuf::from(env("INSTANODE_TEST_PYTHON")).with_file_name("schemathesis");
    let report = host.dir.join(format!("schemathesis-{label}"));
    let seed = std::env::var("INSTANODE_SCHEMATHESIS_SEED").unwrap_or_else(|_| "1".into());
    let examples = std::env::var("INSTANODE_SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| "12".into());
    let mut command = tokio::process::Command::new(program);
    // Its caches land in the host's folder, not in the source tree.
    command.current_dir(&host.dir).args([
        "run",
        spec.to_str().unwrap(),
        "--url",
        &host.url,
        "--checks",
        "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        &examples,
        "--seed",
        &seed,
        "--workers",
        "2",
        "--generation-database",
        "none",
        "--request-timeout",
        "20",
        "--no-color",
        // A generator health check (too few generated ids fit a path pattern), not a finding
        // about the server; left on, it fails runs at random.
        "--suppress-health-check=filter_too_much",
        "--report",
        "junit",
        "--report-dir",
        report.to_str().unwrap(),
        // One client address for the whole run.
        "-H",
        "X-Forwarded-For: 10.99.0.1",
    ]);
    if let Some(key) = key {
        command.args(["-H", &format!("Authorization: Bearer {key}")]);
    }
    if let Some(pattern) = only {
        command.args(["--include-path-regex", pattern]);
    }
    let out = command.output().await.expect("schemathesis runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "schemathesis ({label}) found problems:\n{stdout}\n{stderr}\n(host log: {})",
        host.dir.join("host.log").display()
    );
    assert!(stdout.contains("passed"), "{stdout}");
}

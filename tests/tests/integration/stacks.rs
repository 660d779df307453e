//! End to end on the real engine and the real Postgres: the spec's canonical flow (a
//! database, then a Python web app on it, deployed to a URL) and a two-service stack.

use std::time::{Duration, Instant};

use instanode::api::schema::{DeploymentAnswer, Stack, StackCreated, StackDeleted};
use instanode::store::DeploymentStatus;
use instanode_tests::deploy::{
    containers_of, deploy, namespace_of, static_site, tarball, through_proxy, upload, wait_for,
};
use instanode_tests::{HostOptions, ProviderSpec, TestHost, assert_error};
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::Connection;

/// Python images build slower than busybox ones on a busy machine.
const ROLLOUT: Duration = Duration::from_secs(240);

fn options() -> HostOptions {
    HostOptions {
        providers: vec![
            ProviderSpec::postgres(&["db"]).setting("internal_host", "host.docker.internal"),
            ProviderSpec::deploy(),
        ],
        ..HostOptions::default()
    }
}

const EXPENSES_APP: &str = r#"
import os
import psycopg2
from fastapi import FastAPI

app = FastAPI()


def connect():
    return psycopg2.connect(os.environ["DATABASE_URL"])


@app.on_event("startup")
def create_table():
    with connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS expenses (id serial PRIMARY KEY, item text NOT NULL, cents int NOT NULL)")


@app.post("/expenses")
def add(expense: dict):
    with connect() as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO expenses (item, cents) VALUES (%s, %s) RETURNING id", (expense["item"], int(expense["cents"])))
        return {"id": cur.fetchone()[0]}


@app.get("/expenses")
def list_expenses():
    with connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT item, cents FROM expenses ORDER BY id")
        return [{"item": item, "cents": cents} for item, cents in cur.fetchall()]
"#;

const EXPENSES_DOCKERFILE: &str = "FROM instanode/python:3-bookworm\nWORKDIR /app\nCOPY main.py .\nUSER nobody\nCMD [\"python3\", \"-m\", \"uvicorn\", \"main:app\", \"--host\", \"0.0.0.0\", \"--port\", \"8080\"]\n";

#[tokio::test]
async fn the_canonical_example_a_fastapi_app_on_postgres_answers_at_its_url() {
    let host = TestHost::start(options()).await;
    let db = host.provision("db", "expenses-db").await;
    let internal_url = db.internal_url.as_deref().expect("an internal_url");
    assert!(
        internal_url.contains("@host.docker.internal:"),
        "{internal_url}"
    );
    let jwt = db.upgrade_jwt.as_str();

    let app = tarball(&[
        ("Dockerfile", EXPENSES_DOCKERFILE),
        ("main.py", EXPENSES_APP),
    ]);
    let env_vars = json!({ "DATABASE_URL": internal_url }).to_string();
    let reply = deploy(
        &host,
        jwt,
        app,
        &[("name", "expense-tracker"), ("env_vars", &env_vars)],
    )
    .await;
    let answer: DeploymentAnswer = reply.expect(202);
    let id = answer.id.to_string();
    let url = answer.url.expect("an app URL");
    wait_for(&host, &id, 1, &["healthy"], ROLLOUT).await;

    let (status, body) = through_proxy(
        &host,
        Method::POST,
        &format!("{url}/expenses"),
        Some(json!({ "item": "coffee", "cents": 350 }).to_string()),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) =
        through_proxy(&host, Method::GET, &format!("{url}/expenses"), None, None).await;
    assert_eq!(status, 200, "{body}");
    let listed: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(listed, json!([{ "item": "coffee", "cents": 350 }]));

    // The row is really in the tenant's database.
    let mut conn = sqlx::PgConnection::connect(&db.connection_url)
        .await
        .unwrap();
    let cents: i32 = sqlx::query_scalar("SELECT cents FROM expenses WHERE item = 'coffee'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(cents, 350);
}

const WEB: &str = r#"
import os, urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        with urllib.request.urlopen(os.environ["BACKEND_URL"] + "/", timeout=5) as r:
            body = b"web sees: " + r.read()
        self.send_response(200)
        self.end_headers()
        self.wfile.write(body)

HTTPServer(("0.0.0.0", 8080), Handler).serve_forever()
"#;

const BACKEND: &str = r#"
import os, psycopg2
from http.server import BaseHTTPRequestHandler, HTTPServer

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        with psycopg2.connect(os.environ["DATABASE_URL"]) as conn, conn.cursor() as cur:
            cur.execute("SELECT current_database()")
            name = cur.fetchone()[0]
        self.send_response(200)
        self.end_headers()
        self.wfile.write(("backend-ok db=" + name).encode())

HTTPServer(("0.0.0.0", 9000), Handler).serve_forever()
"#;

fn python_service(script: &str) -> Vec<u8> {
    tarball(&[
        (
            "Dockerfile",
            "FROM instanode/python:3-bookworm\nCOPY app.py /app.py\nUSER nobody\nCMD [\"python3\", \"-u\", \"/app.py\"]\n",
        ),
        ("app.py", script),
    ])
}

async fn stack_status(
    host: &TestHost,
    slug: &str,
    bearer: &str,
    wanted: DeploymentStatus,
) -> Stack {
    let started = Instant::now();
    loop {
        let reply = host
            .get_with(
                &format!("/api/v1/stacks/{slug}"),
                &[("authorization", &format!("Bearer {bearer}"))],
            )
            .await;
        let stack: Stack = reply.expect(200);
        if stack.status == wanted {
            return stack;
        }
        assert!(
            started.elapsed() < ROLLOUT && stack.status != DeploymentStatus::Failed,
            "stack {slug}: {}",
            reply.body
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn a_stack_links_its_services_and_injects_the_database_url() {
    let host = TestHost::start(options()).await;
    let namespace = namespace_of(&host);
    let db = host.provision("db", "stack-db").await;
    let jwt = db.upgrade_jwt.as_str();
    let token = db.token;
    let manifest = format!(
        "services:\n  web:\n    build: .\n    port: 8080\n    expose: true\n    env:\n      BACKEND_URL: service://backend\n  backend:\n    port: 9000\n    needs: [\"{token}\"]\n"
    );

    // A missing tarball and a foreign resource are refused before anything starts.
    let reply = upload(
        &host,
        "/stacks/new",
        Some(jwt),
        &[("name", "shop"), ("manifest", &manifest)],
        &[("web", python_service(WEB))],
    )
    .await;
    assert_error(&reply, 400, "missing_tarball");
    let other = host.provision("db", "not-mine").await;
    let foreign = manifest.replace(&token.to_string(), &other.token.to_string());
    let reply = upload(
        &host,
        "/stacks/new",
        Some(jwt),
        &[("name", "shop"), ("manifest", &foreign)],
        &[
            ("web", python_service(WEB)),
            ("backend", python_service(BACKEND)),
        ],
    )
    .await;
    assert_error(&reply, 400, "resource_not_found");
    let reply = upload(
        &host,
        "/stacks/new",
        Some(jwt),
        &[("name", "shop"), ("manifest", "services: {}")],
        &[],
    )
    .await;
    assert_error(&reply, 400, "invalid_manifest");
    assert!(containers_of(&namespace).is_empty());

    let reply = upload(
        &host,
        "/stacks/new",
        Some(jwt),
        &[("name", "shop"), ("manifest", &manifest)],
        &[
            ("web", python_service(WEB)),
            ("backend", python_service(BACKEND)),
        ],
    )
    .await;
    let created: StackCreated = reply.expect(202);
    let slug = created.slug.clone();
    assert!(slug.starts_with("stk-"), "{slug}");
    assert_eq!(created.expires_in, "6h");

    let stack_token = created.stack_token.expect("a stack token");
    assert!(stack_token.starts_with("stt_"), "{stack_token}");

    // The slug is a public handle: reading or deleting needs the owner's credential.
    let path = format!("/api/v1/stacks/{slug}");
    assert_error(&host.get(&path).await, 401, "unauthorized");
    let someone_else = other.upgrade_jwt.as_str();
    let wrong = [("authorization", format!("Bearer {someone_else}"))];
    let wrong = [(wrong[0].0, wrong[0].1.as_str())];
    assert_error(&host.get_with(&path, &wrong).await, 404, "stack_not_found");
    assert_error(
        &host.delete_with(&path, &wrong).await,
        404,
        "stack_not_found",
    );
    let by_token = host
        .get_with(
            &path,
            &[("authorization", &format!("Bearer {stack_token}"))],
        )
        .await;
    by_token.expect::<Stack>(200);

    let stack = stack_status(&host, &slug, jwt, DeploymentStatus::Healthy).await;
    let services = &stack.services;
    let web = services.iter().find(|s| s.name == "web").unwrap();
    let backend = services.iter().find(|s| s.name == "backend").unwrap();
    assert!(backend.url.is_none(), "unexposed: {backend:?}");
    assert_eq!(
        backend.env["DATABASE_URL"], "***",
        "credentials stay hidden"
    );
    assert_eq!(web.env["BACKEND_URL"], "http://backend:9000");
    let url = web.url.as_deref().unwrap();
    let (status, body) = through_proxy(&host, Method::GET, url, None, None).await;
    assert_eq!(status, 200, "{body}");
    let database = db.connection_url.rsplit('/').next().unwrap();
    assert_eq!(body, format!("web sees: backend-ok db={database}"));

    let reply = host
        .delete_with(
            &path,
            &[("authorization", &format!("Bearer {stack_token}"))],
        )
        .await;
    reply.expect::<StackDeleted>(200);
    assert_eq!(
        stack_status(&host, &slug, jwt, DeploymentStatus::Stopped)
            .await
            .status,
        DeploymentStatus::Stopped
    );
    assert!(containers_of(&namespace).is_empty());
}

/// Kinds may share a variable (`db` and `vector` both name DATABASE_URL): a service that
/// needs one of each gets both URLs, numbered, and neither overwrites the other.
#[tokio::test]
async fn needs_of_kinds_sharing_a_variable_are_numbered_not_overwritten() {
    let host = TestHost::start(HostOptions::databases_and_deploy()).await;
    // Both from one client address: one owner.
    let client = [("x-forwarded-for", "10.250.0.9")];
    let db = host.provision_with("db", "app-db", &client).await;
    let vectors = host.provision_with("vector", "app-vector", &client).await;
    let jwt = db.upgrade_jwt.as_str();
    let manifest = format!(
        "services:\n  web:\n    build: .\n    port: 8080\n    expose: true\n    needs: [\"{}\", \"{}\"]\n",
        db.token, vectors.token,
    );
    let reply = upload(
        &host,
        "/stacks/new",
        Some(jwt),
        &[("name", "shared"), ("manifest", &manifest)],
        &[("web", static_site("ok"))],
    )
    .await;
    let created: StackCreated = reply.expect(202);
    let path = format!("/api/v1/stacks/{}", created.slug);
    let bearer = format!("Bearer {}", created.stack_token.expect("a stack token"));
    let stack: Stack = host
        .get_with(&path, &[("authorization", &bearer)])
        .await
        .expect(200);
    let env = &stack.services[0].env;
    assert_eq!(env["DATABASE_URL"], "***", "{env:?}");
    assert_eq!(env["DATABASE_URL_2"], "***", "{env:?}");
    let reply = host.delete_with(&path, &[("authorization", &bearer)]).await;
    reply.expect::<StackDeleted>(200);
}

/// The same stack on Swarm: each service a replicated service, linked on an encrypted
/// overlay network of the stack's own where `backend` resolves by name.
#[tokio::test]
async fn a_stack_runs_on_swarm_linked_by_an_encrypted_overlay() {
    let host = TestHost::start(HostOptions {
        providers: vec![
            ProviderSpec::postgres(&["db"]).setting("internal_host", "host.docker.internal"),
            ProviderSpec::swarm(1).setting("encrypted_networks", "true"),
        ],
        ..HostOptions::default()
    })
    .await;
    let db = host.provision("db", "stack-db").await;
    let jwt = db.upgrade_jwt.as_str();
    let manifest = format!(
        "services:\n  web:\n    build: .\n    port: 8080\n    expose: true\n    env:\n      BACKEND_URL: service://backend\n  backend:\n    port: 9000\n    needs: [\"{}\"]\n",
        db.token
    );
    let reply = upload(
        &host,
        "/stacks/new",
        Some(jwt),
        &[("name", "shop"), ("manifest", &manifest)],
        &[
            ("web", python_service(WEB)),
            ("backend", python_service(BACKEND)),
        ],
    )
    .await;
    let created: StackCreated = reply.expect(202);
    let stack = stack_status(&host, &created.slug, jwt, DeploymentStatus::Healthy).await;
    let web = stack.services.iter().find(|s| s.name == "web").unwrap();
    let (status, body) =
        through_proxy(&host, Method::GET, web.url.as_deref().unwrap(), None, None).await;
    assert_eq!(status, 200, "{body}");
    let database = db.connection_url.rsplit('/').next().unwrap();
    assert_eq!(body, format!("web sees: backend-ok db={database}"));

    // One overlay network for the stack, encrypted, holding both services.
    let config = std::fs::read_to_string(host.dir.join("instanode.toml")).unwrap();
    let namespace = config
        .lines()
        .filter_map(|l| l.strip_prefix("namespace = "))
        .map(|n| n.trim_matches('"'))
        .find(|n| n.starts_with("sw"))
        .unwrap()
        .to_string();
    let label = format!("label=dev.instanode.namespace={namespace}");
    let networks = instanode_tests::deploy::docker(&[
        "network",
        "ls",
        "--filter",
        &label,
        "--format",
        "{{.Name}}",
    ]);
    let networks: Vec<&str> = networks.lines().collect();
    assert_eq!(networks.len(), 1, "{networks:?}");
    let network: Value = serde_json::from_str(&instanode_tests::deploy::docker(&[
        "network",
        "inspect",
        networks[0],
    ]))
    .unwrap();
    assert_eq!(network[0]["Driver"], "overlay");
    assert!(
        network[0]["Options"].get("encrypted").is_some(),
        "{network}"
    );

    let path = format!("/api/v1/stacks/{}", created.slug);
    host.delete_with(&path, &[("authorization", &format!("Bearer {jwt}"))])
        .await
        .expect::<StackDeleted>(200);
    stack_status(&host, &created.slug, jwt, DeploymentStatus::Stopped).await;
    let services = instanode_tests::deploy::docker(&[
        "service",
        "ls",
        "--filter",
        &label,
        "--format",
        "{{.Name}}",
    ]);
    assert!(services.trim().is_empty(), "{services}");
}

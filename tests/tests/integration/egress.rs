//! What tenants' code can reach: builds reach nothing (no network, no engine-side
//! fetches), running apps reach their backends' ports and nothing else of the host, and a
//! redeploy loop keeps at most one build per app running.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use instanode::api::schema::DeploymentAnswer;
use instanode::store::DeploymentStatus;
use instanode_tests::deploy::{deploy, docker, new_owner, tarball, through_proxy, wait_for};
use instanode_tests::{HostOptions, ProviderSpec, TestHost, assert_error, env};
use reqwest::Method;
use serde_json::Value;

const ROLLOUT: Duration = Duration::from_secs(180);

/// A service on every address of this machine, counting who connects (a stand-in for the
/// API, NATS monitoring or anything an operator runs beside the host).
async fn host_service() -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                let _ = socket
                    .write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 6\r\n\r\nsecret")
                    .await;
            });
        }
    });
    (port, connections)
}

/// The default bridge's gateway: the host as containers (and `RUN` steps) would reach it.
fn gateway() -> String {
    instanode_tests::env("INSTANODE_TEST_DOCKER_GATEWAY")
}

#[tokio::test]
async fn builds_fetch_nothing_from_the_host() {
    let host = TestHost::start(HostOptions::only(ProviderSpec::deploy())).await;
    let jwt = new_owner(&host).await;
    let (port, connections) = host_service().await;

    // The engine itself would fetch these: refused before anything is built.
    for dockerfile in [
        format!("FROM instanode/busybox:1\nADD http://127.0.0.1:{port}/ /stolen\n"),
        "FROM instanode/busybox:1\nADD http://169.254.169.254/latest/meta-data/ /m\n".into(),
        format!("FROM 127.0.0.1:{port}/someone-else\n"),
        format!("ARG SRC=http://127.0.0.1:{port}/\nFROM instanode/busybox:1\nADD $SRC /x\n"),
    ] {
        let reply = deploy(
            &host,
            &jwt,
            tarball(&[("Dockerfile", &dockerfile)]),
            &[("name", "fetcher")],
        )
        .await;
        let refusal = assert_error(&reply, 400, "dockerfile_remote_source");
        assert!(
            refusal.message.contains("Dockerfile line"),
            "{}",
            reply.body
        );
    }

    // `RUN` steps have no network: the gateway and link-local addresses are out of reach.
    let dockerfile = format!(
        "FROM instanode/busybox:1\n\
         RUN mkdir -p /www && echo done >/www/index.html ; \
             wget -q -T 5 -O /www/stolen http://{gw}:{port}/ ; \
             wget -q -T 5 -O /www/meta http://169.254.169.254/ ; true\n\
         CMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n",
        gw = gateway()
    );
    let reply = deploy(
        &host,
        &jwt,
        tarball(&[("Dockerfile", &dockerfile)]),
        &[("name", "runner")],
    )
    .await;
    let answer: DeploymentAnswer = reply.expect(202);
    let url = answer.url.expect("an app URL");
    wait_for(&host, &answer.id.to_string(), 1, &["healthy"], ROLLOUT).await;
    let (status, body) =
        through_proxy(&host, Method::GET, &format!("{url}/stolen"), None, None).await;
    assert_ne!((status, body.as_str()), (200, "secret"));
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "a build step connected to the host"
    );
}

/// A Python app that reports what it can reach: `?host=&port=` (a TCP connection) or
/// `?pg=<url>` (a Postgres login).
const PROBE_APP: &str = r#"
import socket, urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer
import psycopg2

def tcp(host, port):
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
        return "open"
    except OSError as e:
        return "closed: %s" % e

def login(url):
    try:
        conn = psycopg2.connect(url, connect_timeout=5)
        cur = conn.cursor()
        cur.execute("SELECT current_user")
        return "login as %s" % cur.fetchone()[0]
    except Exception as e:
        return "refused: %s" % str(e).strip().splitlines()[0]

class Probe(BaseHTTPRequestHandler):
    def do_GET(self):
        q = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(self.path).query))
        if "pg" in q:
            answer = login(q["pg"])
        elif "host" in q:
            answer = tcp(q["host"], q["port"])
        else:
            answer = "ready"

        body = answer.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

HTTPServer(("0.0.0.0", 8080), Probe).serve_forever()
"#;

#[tokio::test]
async fn a_running_app_reaches_its_backends_and_nothing_else_of_the_host() {
    reaches_its_backends_and_nothing_else(ProviderSpec::deploy()).await;
}

/// Swarm tasks leave through the engine's gateway bridge, not an app bridge: the same
/// rules hold for them.
#[tokio::test]
async fn a_swarm_task_reaches_its_backends_and_nothing_else_of_the_host() {
    reaches_its_backends_and_nothing_else(ProviderSpec::swarm(1)).await;
}

async fn reaches_its_backends_and_nothing_else(deployer: ProviderSpec) {
    let host = TestHost::start(HostOptions {
        providers: vec![
            deployer,
            ProviderSpec::postgres(&["db"]).setting("internal_host", "host.docker.internal"),
        ],
        ..HostOptions::default()
    })
    .await;
    let (port, connections) = host_service().await;
    let db = host.provision("db", "probe-db").await;
    let jwt = db.upgrade_jwt.as_str();
    let app = tarball(&[
        (
            "Dockerfile",
            "FROM instanode/python:3-bookworm\nCOPY probe.py /probe.py\nUSER nobody\nCMD [\"python3\", \"/probe.py\"]\n",
        ),
        ("probe.py", PROBE_APP),
    ]);
    let reply = deploy(&host, jwt, app, &[("name", "probe")]).await;
    let answer: DeploymentAnswer = reply.expect(202);
    let url = answer.url.expect("an app URL");
    wait_for(&host, &answer.id.to_string(), 1, &["healthy"], ROLLOUT).await;
    let probe = |query: String| {
        let url = format!("{url}/?{query}");
        let host = &host;
        async move { through_proxy(host, Method::GET, &url, None, None).await.1 }
    };
    let encoded =
        |text: &str| url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>();

    // The tenant's own database, through its internal_url: a real login.
    let internal_url = db.internal_url.as_deref().expect("an internal_url");
    let own = probe(format!("pg={}", encoded(internal_url))).await;
    assert!(own.starts_with("login as "), "{own}");

    // The host's own role on the metadata server, with the right password: refused.
    let pg_port = env("INSTANODE_TEST_PG_PORT");
    let superuser = env("INSTANODE_TEST_PG_SUPERUSER_URL").replace(
        &format!("127.0.0.1:{pg_port}"),
        &format!("host.docker.internal:{pg_port}"),
    );
    let metadata = instanode_tests::with_database(&superuser, &host.metadata_db);
    let answer = probe(format!("pg={}", encoded(&metadata))).await;
    assert!(answer.starts_with("refused: "), "{answer}");

    // Any other port of the host (the API, NATS monitoring, a stand-in on all addresses),
    // and the cloud metadata address: closed.
    let api_port = host.url.rsplit(':').next().unwrap().to_string();
    let gateway = gateway();
    for (target, port) in [
        ("host.docker.internal", port.to_string()),
        ("host.docker.internal", api_port),
        (gateway.as_str(), port.to_string()),
        ("169.254.169.254", "80".to_string()),
    ] {
        let answer = probe(format!("host={target}&port={port}")).await;
        assert!(answer.starts_with("closed"), "{target}:{port}: {answer}");
    }
    assert_eq!(connections.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_redeploy_loop_keeps_one_build_running_per_app() {
    let host = TestHost::start(HostOptions::only(ProviderSpec::deploy())).await;
    let jwt = new_owner(&host).await;
    let marker = format!("build-{}", uuid::Uuid::new_v4().simple());
    let dockerfile = format!(
        "FROM instanode/busybox:1\n\
         RUN echo {marker} && sleep 3 && mkdir -p /www && echo ok >/www/index.html\n\
         CMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n"
    );
    let reply = deploy(
        &host,
        &jwt,
        tarball(&[("Dockerfile", &dockerfile)]),
        &[("name", "looper")],
    )
    .await;
    let id = reply.expect::<DeploymentAnswer>(202).id.to_string();

    // The engine's build containers running this app's `RUN` step, sampled throughout.
    let running_builds = {
        let marker = marker.clone();
        move || {
            docker(&["ps", "--no-trunc", "--format", "{{.Command}}"])
                .lines()
                .filter(|command| command.contains(&marker))
                .count()
        }
    };
    let most = Arc::new(AtomicUsize::new(0));
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let (most, sampling, running_builds) = (most.clone(), sampling.clone(), running_builds);
        tokio::task::spawn_blocking(move || {
            while sampling.load(Ordering::SeqCst) {
                most.fetch_max(running_builds(), Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };

    for _ in 0..50 {
        let reply = host
            .post_json(&format!("/deploy/{id}/redeploy"), Value::Null)
            .await;
        reply.expect::<DeploymentAnswer>(202);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let item = wait_for(&host, &id, 51, &["healthy"], ROLLOUT).await;
    assert_eq!(item.generation, 51);
    // Cancelled builds leave no build step behind either.
    tokio::time::sleep(Duration::from_secs(5)).await;
    sampling.store(false, Ordering::SeqCst);
    sampler.await.unwrap();
    let most = most.load(Ordering::SeqCst);
    assert!(most >= 1, "the sampler never saw a build");
    assert!(most <= 1, "{most} builds of one app ran at once");
}

#[tokio::test]
async fn a_build_step_cannot_fork_past_its_process_cap() {
    let host = TestHost::start(HostOptions::only(ProviderSpec::deploy())).await;
    let jwt = new_owner(&host).await;
    // 600 background processes in one step: more than the default cap of 512.
    let dockerfile = "FROM instanode/busybox:1\n\
         RUN i=0; while [ $i -lt 600 ]; do sleep 30 & i=$((i+1)); done; echo forked-all\n\
         CMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/\"]\n";
    let reply = deploy(
        &host,
        &jwt,
        tarball(&[("Dockerfile", dockerfile)]),
        &[("name", "forker")],
    )
    .await;
    let item = wait_for(
        &host,
        &reply.expect::<DeploymentAnswer>(202).id.to_string(),
        1,
        &["healthy", "failed"],
        ROLLOUT,
    )
    .await;
    assert_eq!(
        item.status,
        DeploymentStatus::Failed,
        "the step forked 600 processes: {item:?}"
    );
    // The autopsy is free-form: reason, exit_code, last_lines, hint.
    let failure = item.failure.expect("a failure autopsy");
    assert_eq!(failure["reason"], "BuildFailed", "{failure}");
    let lines: Vec<&str> = failure["last_lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(lines.iter().any(|l| l.contains("can't fork")), "{lines:?}");
    assert!(!lines.contains(&"forked-all"), "{lines:?}");
}

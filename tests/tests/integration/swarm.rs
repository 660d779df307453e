//! Deploys on Docker Swarm (the machine's single-node cluster, images through the test
//! registry): a FastAPI app on Postgres as a two-task service that loses no request of a
//! steady client when a task is killed or the app is redeployed; failures classified from
//! task states; and an operator switching from the single-engine provider, whose apps stay
//! with it.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use instanode::api::schema::{DeploymentAnswer, DeploymentDeleted};
use instanode::store::DeploymentStatus;
use instanode_tests::deploy::{
    containers_of, deploy, docker, new_owner, static_site, tarball, through_proxy, try_app_via,
    wait_for, wait_for_body,
};
use instanode_tests::{HostOptions, ProviderSpec, TestHost, env};
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::Connection;

/// Python images build slower than busybox ones on a busy machine.
const ROLLOUT: Duration = Duration::from_secs(240);

pub(crate) const APP: &str = r#"
import os, socket
from contextlib import closing
import psycopg2
from fastapi import FastAPI

app = FastAPI()


@app.get("/")
def who():
    return {"version": os.environ["VERSION"], "task": socket.gethostname()}


@app.post("/hits")
def hit():
    task = socket.gethostname()
    # One connection at a time per request, closed at once: the tier caps connections.
    with closing(psycopg2.connect(os.environ["DATABASE_URL"])) as conn, conn, conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(42)")
        cur.execute("CREATE TABLE IF NOT EXISTS hits (task text NOT NULL, version text NOT NULL)")
        cur.execute("INSERT INTO hits VALUES (%s, %s)", (task, os.environ["VERSION"]))
    return {"version": os.environ["VERSION"], "task": task}
"#;

pub(crate) const DOCKERFILE: &str = "FROM instanode/python:3-bookworm\nWORKDIR /app\nCOPY main.py .\nUSER nobody\nCMD [\"python3\", \"-m\", \"uvicorn\", \"main:app\", \"--host\", \"0.0.0.0\", \"--port\", \"8080\"]\n";

/// The namespace of the host's `swarm` provider.
fn swarm_namespace(host: &TestHost) -> String {
    let config = std::fs::read_to_string(host.dir.join("instanode.toml")).expect("config");
    config
        .lines()
        .filter_map(|l| l.strip_prefix("namespace = "))
        .map(|n| n.trim_matches('"').to_string())
        .find(|n| n.starts_with("sw"))
        .expect("a swarm namespace")
}

/// Names of the Swarm services of `namespace`.
pub(crate) fn services_of(namespace: &str) -> Vec<String> {
    docker(&[
        "service",
        "ls",
        "--filter",
        &format!("label=dev.instanode.namespace={namespace}"),
        "--format",
        "{{.Name}}",
    ])
    .lines()
    .map(str::to_string)
    .collect()
}

/// IDs of the running containers of service `service`.
pub(crate) fn task_containers(service: &str) -> Vec<String> {
    docker(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=com.docker.swarm.service.name={service}"),
    ])
    .lines()
    .map(str::to_string)
    .collect()
}

/// What a steady client saw: requests sent, and every failure.
pub(crate) struct Steady {
    pub(crate) sent: usize,
    pub(crate) failures: Vec<String>,
    pub(crate) versions: BTreeSet<String>,
}

/// GETs app URL `url` through `base` (a host or nginx in front of hosts; an answer from
/// memory, so the tenant's connection cap plays no part) one request after another until
/// `stop` is set (at most 3 minutes, loopback only), recording every answer that is not a
/// 200 from the app.
pub(crate) fn steady_client(
    base: &str,
    url: &str,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Steady> {
    let (base, url) = (base.to_string(), url.to_string());
    tokio::spawn(async move {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("a client");
        let began = Instant::now();
        let mut seen = Steady {
            sent: 0,
            failures: Vec::new(),
            versions: BTreeSet::new(),
        };
        while !stop.load(Ordering::Relaxed) && began.elapsed() < Duration::from_secs(180) {
            seen.sent += 1;
            match try_app_via(&http, &base, &url).await {
                Ok((200, body)) => {
                    let answer: Value = serde_json::from_str(&body).unwrap_or_default();
                    seen.versions
                        .insert(answer["version"].as_str().unwrap_or("?").to_string());
                }
                other => seen.failures.push(format!("{other:?}")),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        seen
    })
}

impl Steady {
    /// Asserts no request failed, and that both version 1 and version 2 answered.
    pub(crate) fn saw_a_switch_without_failures(&self) {
        assert!(
            self.failures.is_empty(),
            "{} of {} requests failed during the redeploy: {:?}",
            self.failures.len(),
            self.sent,
            self.failures
        );
        assert_eq!(
            self.versions,
            BTreeSet::from(["1".to_string(), "2".to_string()]),
            "the client saw the switch"
        );
    }
}

/// Kills one task of `service` while a steady client asks `url` through `base`, waits for the
/// cluster to replace it and the route to follow, and asserts not one request failed.
pub(crate) async fn kill_a_task_under_a_steady_client(base: &str, url: &str, service: &str) {
    let stop = Arc::new(AtomicBool::new(false));
    let client = steady_client(base, url, stop.clone());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let victim = task_containers(service)[0].clone();
    docker(&["kill", &victim]);
    let began = Instant::now();
    while task_containers(service).len() < 2 || task_containers(service).contains(&victim) {
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "no replacement task"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Long enough for the route to follow the new task and for it to take requests.
    tokio::time::sleep(Duration::from_secs(5)).await;
    stop.store(true, Ordering::Relaxed);
    let seen = client.await.unwrap();
    assert!(seen.sent > 50, "the client kept asking: {}", seen.sent);
    assert!(
        seen.failures.is_empty(),
        "{} of {} requests failed while a task was killed: {:?}",
        seen.failures.len(),
        seen.sent,
        seen.failures
    );
}

#[tokio::test]
async fn a_fastapi_app_on_postgres_runs_as_two_tasks_and_loses_no_request() {
    let host = TestHost::start(HostOptions::of(vec![
        ProviderSpec::postgres(&["db"]).setting("internal_host", "host.docker.internal"),
        ProviderSpec::swarm(2),
    ]))
    .await;
    let namespace = swarm_namespace(&host);
    let db = host.provision("db", "hits-db").await;
    let internal_url = db.internal_url.clone().expect("an internal_url");
    let jwt = db.upgrade_jwt.clone();

    let app = |version: &str| {
        (
            tarball(&[("Dockerfile", DOCKERFILE), ("main.py", APP)]),
            json!({ "DATABASE_URL": internal_url, "VERSION": version }).to_string(),
        )
    };
    let (context, env_vars) = app("1");
    let answer: DeploymentAnswer = deploy(
        &host,
        &jwt,
        context,
        &[("name", "hits"), ("env_vars", &env_vars)],
    )
    .await
    .expect(202);
    let id = answer.id.to_string();
    let url = answer.url.expect("an app URL");
    wait_for(&host, &id, 1, &["healthy"], ROLLOUT).await;

    // One service of two tasks, each capped, reached through the registry's copy.
    let services = services_of(&namespace);
    assert_eq!(services.len(), 1, "{services:?}");
    let service = services[0].clone();
    let spec: Value = serde_json::from_str(&docker(&["service", "inspect", &service])).unwrap();
    let spec = &spec[0]["Spec"];
    assert_eq!(spec["Mode"]["Replicated"]["Replicas"], 2);
    assert_eq!(spec["UpdateConfig"]["Order"], "start-first");
    let limits = &spec["TaskTemplate"]["Resources"]["Limits"];
    assert_eq!(limits["MemoryBytes"], 256 * 1024 * 1024);
    assert_eq!(limits["NanoCPUs"], 500_000_000);
    let image = spec["TaskTemplate"]["ContainerSpec"]["Image"]
        .as_str()
        .unwrap()
        .to_string();
    let registry = env("INSTANODE_TEST_REGISTRY");
    assert!(
        image.starts_with(&format!("{registry}/{namespace}-app-")) && image.contains("@sha256:"),
        "runs the pushed image by digest: {image}"
    );
    assert!(containers_of(&namespace).len() == 2 || task_containers(&service).len() == 2);

    // Requests reach both tasks, and both write to the tenant's database.
    let mut tasks = BTreeSet::new();
    for _ in 0..20 {
        let (status, body) = through_proxy(
            &host,
            Method::POST,
            &format!("{url}/hits"),
            Some("{}".into()),
            None,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let answer: Value = serde_json::from_str(&body).unwrap();
        tasks.insert(answer["task"].as_str().unwrap().to_string());
    }
    assert_eq!(tasks.len(), 2, "both tasks answer: {tasks:?}");
    let mut conn = sqlx::PgConnection::connect(&db.connection_url)
        .await
        .unwrap();
    let writers: i64 = sqlx::query_scalar("SELECT count(DISTINCT task) FROM hits")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(writers, 2);

    // A task killed under a steady client: not one request fails, and the cluster brings
    // the service back to two tasks.
    kill_a_task_under_a_steady_client(&host.url, &url, &service).await;

    // A rolling redeploy under the same client: zero failed requests, and version 2 is
    // what answers at the end.
    let stop = Arc::new(AtomicBool::new(false));
    let client = steady_client(&host.url, &url, stop.clone());
    let (context, env_vars) = app("2");
    deploy(
        &host,
        &jwt,
        context,
        &[
            ("name", "hits"),
            ("env_vars", &env_vars),
            ("redeploy", "true"),
        ],
    )
    .await
    .expect::<DeploymentAnswer>(202);
    wait_for(&host, &id, 2, &["healthy"], ROLLOUT).await;
    wait_for_body(&host, &url, "\"version\":\"2\"", Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let seen = client.await.unwrap();
    seen.saw_a_switch_without_failures();

    // The replaced generation goes once its drain period is over, with its pushed image.
    let began = Instant::now();
    while services_of(&namespace).len() > 1 {
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "generation 1 still runs: {:?}",
            services_of(&namespace)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (repository, digest) = image
        .strip_prefix(&format!("{registry}/"))
        .and_then(|rest| rest.split_once('@'))
        .unwrap();
    let repository = repository.split(':').next().unwrap();
    let manifest = |repository: &str, digest: &str| {
        let url = format!("http://{registry}/v2/{repository}/manifests/{digest}");
        async move {
            reqwest::Client::new()
                .head(url)
                .basic_auth(
                    env("INSTANODE_TEST_REGISTRY_USER"),
                    Some(env("INSTANODE_TEST_REGISTRY_PASSWORD")),
                )
                .header(
                    "accept",
                    "application/vnd.docker.distribution.manifest.v2+json",
                )
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(
        manifest(repository, digest).await,
        404,
        "{image} was deleted"
    );

    // Delete: the URL stops answering, the services and their images are gone.
    let live = services_of(&namespace);
    host.delete(&format!("/api/v1/deployments/{id}"))
        .await
        .expect::<DeploymentDeleted>(200);
    let (status, _) = through_proxy(&host, Method::GET, &url, None, None).await;
    assert_eq!(status, 404);
    assert!(
        services_of(&namespace).is_empty(),
        "{:?}",
        services_of(&namespace)
    );
    assert!(!live.is_empty());
    // The cluster forgets the app's network at once; the node drops its copy soon after.
    let began = Instant::now();
    loop {
        let networks = docker(&[
            "network",
            "ls",
            "--filter",
            &format!("label=dev.instanode.namespace={namespace}"),
            "--format",
            "{{.Name}}",
        ]);
        if networks.trim().is_empty() {
            break;
        }
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "the app's network is still there: {networks}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn failures_on_swarm_come_back_classified_from_task_states() {
    let host = TestHost::start(HostOptions::only(ProviderSpec::swarm(1))).await;
    let namespace = swarm_namespace(&host);
    let cases = [
        (
            "crasher",
            "FROM instanode/busybox:1\nCMD [\"sh\", \"-c\", \"echo missing DATABASE_URL; exit 3\"]\n",
            "CrashLoopBackOff",
            Some(3),
            "missing DATABASE_URL",
        ),
        (
            "no-command",
            "FROM instanode/busybox:1\nCMD [\"/no/such/server\"]\n",
            "StartFailed",
            None,
            "no such file or directory",
        ),
    ];
    for (name, dockerfile, reason, exit_code, words) in cases {
        // Anonymous owners run one app each.
        let jwt = new_owner(&host).await;
        let answer: DeploymentAnswer = deploy(
            &host,
            &jwt,
            tarball(&[("Dockerfile", dockerfile)]),
            &[("name", name)],
        )
        .await
        .expect(202);
        let item = wait_for(&host, &answer.id.to_string(), 1, &["failed"], ROLLOUT).await;
        assert_eq!(item.status, DeploymentStatus::Failed);
        let failure = item.failure.expect("a failure");
        assert_eq!(failure["reason"], reason, "{name}: {failure}");
        if let Some(code) = exit_code {
            assert_eq!(failure["exit_code"], code, "{name}: {failure}");
        }
        let lines = failure["last_lines"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(
            lines
                .iter()
                .any(|l| l.as_str().unwrap_or_default().contains(words)),
            "{name}: {failure}"
        );
    }
    // A failed rollout leaves no service behind.
    assert!(
        services_of(&namespace).is_empty(),
        "{:?}",
        services_of(&namespace)
    );
}

#[tokio::test]
async fn switching_to_swarm_keeps_earlier_apps_with_the_single_engine_provider() {
    let namespace = format!("it{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let before = TestHost::start(HostOptions::only(ProviderSpec::deploy_in(&namespace))).await;
    let jwt = new_owner(&before).await;
    let answer: DeploymentAnswer =
        deploy(&before, &jwt, static_site("engine v1"), &[("name", "old")])
            .await
            .expect(202);
    let old_id = answer.id.to_string();
    let old_url = answer.url.expect("an app URL");
    wait_for(&before, &old_id, 1, &["healthy"], ROLLOUT).await;
    before.kill_hard();

    // The operator's change: the single-engine provider retires the kind, Swarm serves it.
    let after = TestHost::start(HostOptions {
        metadata_db: Some(before.metadata_db.clone()),
        ..HostOptions::of(vec![
            ProviderSpec::deploy_in(&namespace).retired(),
            ProviderSpec::swarm(1),
        ])
    })
    .await;
    let swarm = swarm_namespace(&after);
    wait_for_body(&after, &old_url, "engine v1", Duration::from_secs(10)).await;

    // A redeploy of the old app stays a container of the single-engine provider.
    deploy(
        &after,
        &jwt,
        static_site("engine v2"),
        &[("name", "old"), ("redeploy", "true")],
    )
    .await
    .expect::<DeploymentAnswer>(202);
    wait_for(&after, &old_id, 2, &["healthy"], ROLLOUT).await;
    wait_for_body(&after, &old_url, "engine v2", Duration::from_secs(10)).await;
    assert_eq!(containers_of(&namespace).len(), 1);

    // A new app runs on the Swarm.
    let jwt = new_owner(&after).await;
    let answer: DeploymentAnswer =
        deploy(&after, &jwt, static_site("swarm v1"), &[("name", "new")])
            .await
            .expect(202);
    let new_id = answer.id.to_string();
    wait_for(&after, &new_id, 1, &["healthy"], ROLLOUT).await;
    wait_for_body(
        &after,
        &answer.url.expect("an app URL"),
        "swarm v1",
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(services_of(&swarm).len(), 1);

    // Deleting the old app reaches the provider that made it.
    after
        .delete(&format!("/api/v1/deployments/{old_id}"))
        .await
        .expect::<DeploymentDeleted>(200);
    assert!(containers_of(&namespace).is_empty());
}

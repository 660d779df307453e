//! Three host replicas on one metadata database behind Debian's nginx, acting as one: any
//! replica provisions and serves, a rollout outlives the replica running it, a route change
//! reaches every replica at once, and a provider uploaded through one serves on all; and the
//! same three in front of the Swarm provider, where a two-task app loses no request of a
//! client going through nginx.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use instanode::api::schema::{Created, DeploymentAnswer, DeploymentDeleted};
use instanode::store::DeploymentStatus;
use instanode_tests::deploy::{
    deploy, new_owner, static_site, tarball, through_proxy, try_app_via, wait_for,
};
use instanode_tests::{
    ADMIN_BEARER, HostOptions, ProviderSpec, TestHost, component_bytes, env, superuser,
};
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::Connection;

use crate::swarm::{
    APP, DOCKERFILE, kill_a_task_under_a_steady_client, services_of, steady_client,
};

const ROLLOUT: Duration = Duration::from_secs(240);

/// nginx balancing over replicas, on a loopback port of its own. Stopped on drop.
struct Nginx {
    url: String,
    child: Child,
}

impl Nginx {
    fn start(replicas: &[&TestHost]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = PathBuf::from(env("INSTANODE_TEST_DATA_DIR"))
            .join("nginx")
            .join(uuid::Uuid::new_v4().simple().to_string());
        std::fs::create_dir_all(&dir).expect("nginx dir");
        let servers: String = replicas
            .iter()
            .map(|r| {
                let address = r.url.trim_start_matches("http://");
                format!("        server {address} max_fails=1 fail_timeout=30s;\n")
            })
            .collect();
        let d = dir.display();
        let config = format!(
            "worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             events {{ worker_connections 512; }}\n\
             http {{\n    access_log off;\n    client_max_body_size 64m;\n\
             client_body_temp_path {d}/body;\n    proxy_temp_path {d}/proxy;\n\
             fastcgi_temp_path {d}/fastcgi;\n    uwsgi_temp_path {d}/uwsgi;\n    scgi_temp_path {d}/scgi;\n\
             upstream replicas {{\n{servers}    }}\n\
             server {{\n        listen 127.0.0.1:{port};\n        location / {{\n\
             proxy_pass http://replicas;\n            proxy_http_version 1.1;\n\
             proxy_set_header Host $http_host;\n\
             proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
             proxy_next_upstream error timeout;\n            proxy_buffering off;\n        }}\n    }}\n}}\n"
        );
        let config_path = dir.join("nginx.conf");
        std::fs::write(&config_path, config).expect("nginx config");
        let child = Command::new(env("INSTANODE_TEST_NGINX"))
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&config_path)
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx starts");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "nginx did not listen: {}",
                std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            url: format!("http://127.0.0.1:{port}"),
            child,
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How many times the rollout of app `token` was started.
async fn rollout_attempts(metadata_db: &str, token: uuid::Uuid) -> i32 {
    let mut db = superuser(metadata_db).await;
    let attempts: i32 = sqlx::query_scalar(
        "SELECT rollout_attempts FROM deployments d JOIN resources r ON r.id = d.resource_id
         WHERE r.token = $1",
    )
    .bind(token)
    .fetch_one(&mut db)
    .await
    .expect("the app's row");
    db.close().await.ok();
    attempts
}

#[tokio::test]
async fn three_replicas_behind_nginx_act_as_one() {
    let namespace = format!("rp{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let options = |metadata_db: Option<String>| HostOptions {
        metadata_db,
        ..HostOptions::of(vec![
            ProviderSpec::postgres(&["db"]),
            ProviderSpec::deploy_in(&namespace),
        ])
    };
    let a = TestHost::start(options(None)).await;
    let b = TestHost::start(options(Some(a.metadata_db.clone()))).await;
    let c = TestHost::start(options(Some(a.metadata_db.clone()))).await;
    let nginx = Nginx::start(&[&a, &b, &c]);
    let http = reqwest::Client::new();

    // Provisioning through nginx: every replica serves what any one of them made.
    let created: Created = {
        let response = http
            .post(format!("{}/db/new", nginx.url))
            .header("x-forwarded-for", "198.51.100.90")
            .json(&serde_json::json!({"name": "balanced"}))
            .send()
            .await
            .expect("nginx answers");
        assert_eq!(response.status().as_u16(), 201);
        response.json().await.expect("a Created answer")
    };
    let mut tenant = sqlx::PgConnection::connect(&created.connection_url)
        .await
        .expect("the database answers");
    sqlx::query("SELECT 1").execute(&mut tenant).await.unwrap();
    for replica in [&a, &b, &c] {
        let view = replica
            .get(&format!("/api/v1/resources/{}", created.token))
            .await;
        assert_eq!(view.status, 200, "{:?}", view.body);
    }

    // A rollout whose replica is killed mid-build is taken over and still ends healthy.
    let jwt = new_owner(&a).await;
    let slow = tarball(&[
        (
            "Dockerfile",
            "FROM instanode/busybox:1\nRUN sleep 8\nCOPY index.html /www/index.html\nEXPOSE 8080\nCMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n",
        ),
        ("index.html", "served v1"),
    ]);
    let answer: DeploymentAnswer = deploy(&a, &jwt, slow, &[("name", "survivor")])
        .await
        .expect(202);
    let id = answer.id.to_string();
    let app_url = answer.url.clone().expect("an app URL");
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Still building (the RUN step sleeps): kill the replica running it.
    wait_for(&b, &id, 1, &["building"], Duration::from_secs(5)).await;
    a.kill_hard();
    let item = wait_for(&b, &id, 1, &["healthy", "failed"], ROLLOUT).await;
    assert_eq!(
        item.status,
        DeploymentStatus::Healthy,
        "{item:?}\n{}",
        b.log()
    );
    assert_eq!(
        rollout_attempts(&a.metadata_db, answer.id).await,
        2,
        "the rollout ran again on a live replica"
    );
    let started = Instant::now();
    loop {
        let (status, body) = try_app_via(&http, &nginx.url, &app_url)
            .await
            .expect("nginx answers");
        if (status, body.trim()) == (200, "served v1") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A redeploy through one replica moves the route on the others at once, not when
    // their cached route expires.
    for _ in 0..3 {
        let (status, body) = through_proxy(&c, Method::GET, &app_url, None, None).await;
        assert_eq!((status, body.trim()), (200, "served v1"));
    }
    let again: DeploymentAnswer = deploy(
        &b,
        &jwt,
        static_site("served v2"),
        &[("name", "survivor"), ("redeploy", "true")],
    )
    .await
    .expect(202);
    assert_eq!(again.id.to_string(), id);
    // C keeps serving (and caching) the old route while the new version builds.
    let mut looked = 0;
    while status_of(&b, &id).await != DeploymentStatus::Healthy || looked == 0 {
        let _ = through_proxy(&c, Method::GET, &app_url, None, None).await;
        looked += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    let (status, body) = through_proxy(&c, Method::GET, &app_url, None, None).await;
    assert_eq!(
        (status, body.trim()),
        (200, "served v2"),
        "C followed at once"
    );

    // A provider uploaded through one replica serves on the others within seconds.
    let next = component_bytes("variants/postgres-next.wasm");
    let swapped = b.upload_provider("postgres", next).await;
    assert_eq!(swapped.status, 200, "{:?}", swapped.body);
    let wanted = b.provider_status("postgres").await.expect("live").sha256;
    let started = Instant::now();
    loop {
        let on_c = c.provider_status("postgres").await.expect("live on C");
        if on_c.sha256 == wanted {
            assert_eq!(on_c.source, "upload");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "C still serves {on_c:?}\n{}",
            c.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // And a rollback through C brings B back to the first version.
    let rolled = c
        .post(
            "/admin/providers/postgres/rollback",
            None,
            Vec::new(),
            &[("authorization", ADMIN_BEARER)],
        )
        .await;
    assert_eq!(rolled.status, 200, "{:?}", rolled.body);
    let first = c.provider_status("postgres").await.expect("live").sha256;
    assert_ne!(first, wanted);
    let started = Instant::now();
    while b
        .provider_status("postgres")
        .await
        .expect("live on B")
        .sha256
        != first
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "B did not follow"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // What the replicas provision still works after the swaps.
    let later = b.provision("db", "after-swaps").await;
    sqlx::PgConnection::connect(&later.connection_url)
        .await
        .expect("the database answers");
}

async fn status_of(host: &TestHost, id: &str) -> DeploymentStatus {
    host.get(&format!("/api/v1/deployments/{id}"))
        .await
        .expect::<DeploymentAnswer>(200)
        .item
        .status
}

#[tokio::test]
async fn three_replicas_behind_nginx_serve_a_swarm_app_without_losing_a_request() {
    let namespace = format!("sw{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let options = |metadata_db: Option<String>| HostOptions {
        metadata_db,
        ..HostOptions::of(vec![
            ProviderSpec::postgres(&["db"]).setting("internal_host", "host.docker.internal"),
            ProviderSpec::swarm_in(&namespace, 2),
        ])
    };
    let a = TestHost::start(options(None)).await;
    let b = TestHost::start(options(Some(a.metadata_db.clone()))).await;
    let c = TestHost::start(options(Some(a.metadata_db.clone()))).await;
    let nginx = Nginx::start(&[&a, &b, &c]);
    let http = reqwest::Client::new();

    // The database through nginx, the app through B.
    let db: Created = {
        let response = http
            .post(format!("{}/db/new", nginx.url))
            .header("x-forwarded-for", "198.51.100.91")
            .json(&json!({"name": "hits-db"}))
            .send()
            .await
            .expect("nginx answers");
        assert_eq!(response.status().as_u16(), 201);
        response.json().await.expect("a Created answer")
    };
    let internal_url = db.internal_url.clone().expect("an internal_url");
    let app = |version: &str| {
        (
            tarball(&[("Dockerfile", DOCKERFILE), ("main.py", APP)]),
            json!({ "DATABASE_URL": internal_url, "VERSION": version }).to_string(),
        )
    };
    let (context, env_vars) = app("1");
    let answer: DeploymentAnswer = deploy(
        &b,
        &db.upgrade_jwt,
        context,
        &[("name", "hits"), ("env_vars", &env_vars)],
    )
    .await
    .expect(202);
    let id = answer.id.to_string();
    let url = answer.url.expect("an app URL");
    wait_for(&c, &id, 1, &["healthy"], ROLLOUT).await;
    let services = services_of(&namespace);
    assert_eq!(services.len(), 1, "{services:?}");
    let service = services[0].clone();

    // Through nginx, whichever replica takes a request reaches both tasks, and both write to
    // the tenant's database.
    let app_host = url::Url::parse(&url)
        .unwrap()
        .host_str()
        .unwrap()
        .to_string();
    let nginx_port = nginx.url.rsplit(':').next().unwrap().to_string();
    let mut tasks = BTreeSet::new();
    for _ in 0..20 {
        let response = http
            .post(format!("{}/hits", nginx.url))
            .header("host", format!("{app_host}:{nginx_port}"))
            .json(&json!({}))
            .send()
            .await
            .expect("nginx answers");
        assert_eq!(response.status().as_u16(), 200);
        let answer: Value = response.json().await.unwrap();
        tasks.insert(answer["task"].as_str().unwrap().to_string());
    }
    assert_eq!(tasks.len(), 2, "both tasks answer: {tasks:?}");
    let mut tenant = sqlx::PgConnection::connect(&db.connection_url)
        .await
        .unwrap();
    let writers: i64 = sqlx::query_scalar("SELECT count(DISTINCT task) FROM hits")
        .fetch_one(&mut tenant)
        .await
        .unwrap();
    assert_eq!(writers, 2);

    // A task killed under a steady client going through nginx: not one request fails.
    kill_a_task_under_a_steady_client(&nginx.url, &url, &service).await;

    // A rolling redeploy through C under the same client: zero failed requests, and every
    // replica switches to version 2.
    let stop = Arc::new(AtomicBool::new(false));
    let client = steady_client(&nginx.url, &url, stop.clone());
    let (context, env_vars) = app("2");
    deploy(
        &c,
        &db.upgrade_jwt,
        context,
        &[
            ("name", "hits"),
            ("env_vars", &env_vars),
            ("redeploy", "true"),
        ],
    )
    .await
    .expect::<DeploymentAnswer>(202);
    wait_for(&a, &id, 2, &["healthy"], ROLLOUT).await;
    let began = Instant::now();
    while !try_app_via(&http, &nginx.url, &url)
        .await
        .is_ok_and(|(_, body)| body.contains("\"version\":\"2\""))
    {
        assert!(began.elapsed() < Duration::from_secs(10), "still version 1");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let seen = client.await.unwrap();
    seen.saw_a_switch_without_failures();
    for replica in [&a, &b, &c] {
        let (status, body) = through_proxy(replica, Method::GET, &url, None, None).await;
        assert_eq!(status, 200);
        assert!(body.contains("\"version\":\"2\""), "{body}");
    }

    // Deleted through A: no replica serves it, and the cluster runs nothing of it.
    a.delete(&format!("/api/v1/deployments/{id}"))
        .await
        .expect::<DeploymentDeleted>(200);
    for replica in [&a, &b, &c] {
        let (status, _) = through_proxy(replica, Method::GET, &url, None, None).await;
        assert_eq!(status, 404);
    }
    assert!(
        services_of(&namespace).is_empty(),
        "{:?}",
        services_of(&namespace)
    );
}

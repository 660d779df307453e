//! Three host replicas on one metadata database behind Debian's nginx, acting as one: any
//! replica provisions and serves, a rollout outlives the replica running it, a route change
//! reaches every replica at once, and a provider uploaded through one serves on all.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use instanode::api::schema::{Created, DeploymentAnswer};
use instanode::store::DeploymentStatus;
use instanode_tests::deploy::{deploy, new_owner, static_site, tarball, through_proxy, wait_for};
use instanode_tests::{
    ADMIN_BEARER, HostOptions, ProviderSpec, TestHost, component_bytes, env, superuser,
};
use reqwest::Method;
use sqlx::Connection;

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

/// A GET of an app URL through nginx (the app's name, nginx's port).
async fn app_through(nginx: &Nginx, app_url: &str) -> (u16, String) {
    let app = url::Url::parse(app_url).expect("app URL");
    let port = nginx.url.rsplit(':').next().unwrap_or_default();
    let response = reqwest::Client::new()
        .get(format!("{}/", nginx.url))
        .header(
            "host",
            format!("{}:{port}", app.host_str().unwrap_or_default()),
        )
        .send()
        .await
        .expect("nginx answers");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
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
        let (status, body) = app_through(&nginx, &app_url).await;
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

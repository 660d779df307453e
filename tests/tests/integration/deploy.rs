//! Deploys on the real Docker Engine: a tarball becomes a container behind the host's
//! proxy; failures come back classified; unsafe uploads never reach the engine; apps are
//! isolated from each other and from the host, and removed without a trace.

use std::time::Duration;

use instanode::api::schema::{DeploymentAnswer, DeploymentDeleted, DeploymentEvents, ErrorBody};
use instanode::store::DeploymentStatus;
use instanode_tests::deploy::{
    containers_of, deploy, docker, images_of, namespace_of, new_owner, sse_lines, static_site,
    tarball, through_proxy, upload, wait_for, wait_for_body,
};
use instanode_tests::{HostOptions, ProviderSpec, TestHost, assert_error};
use reqwest::Method;
use serde_json::Value;

const ROLLOUT: Duration = Duration::from_secs(120);

#[tokio::test]
async fn an_app_answers_at_its_url_and_redeploys_in_place() {
    let host = TestHost::start(HostOptions::only(ProviderSpec::deploy())).await;
    let namespace = namespace_of(&host);
    let jwt = new_owner(&host).await;

    let reply = deploy(&host, &jwt, static_site("hello v1"), &[("name", "My Site")]).await;
    let answer: DeploymentAnswer = reply.expect(202);
    assert_eq!(answer.status, DeploymentStatus::Building);
    assert_eq!(answer.redeployed, Some(false));
    let id = answer.id.to_string();
    let url = answer.url.clone().expect("an app URL");
    let app_id = answer.app_id.as_str();
    assert_eq!(app_id.len(), 8);
    assert!(
        url.starts_with("http://my-site-") && url.contains(".deployment.localhost:"),
        "{url}"
    );
    assert!(answer.agent_action.as_deref().unwrap().contains(&id));

    let item = wait_for(&host, &id, 1, &["healthy"], ROLLOUT).await;
    assert_eq!(item.url.as_deref(), Some(url.as_str()));
    let (status, body) = through_proxy(&host, Method::GET, &url, None, None).await;
    assert_eq!((status, body.trim()), (200, "hello v1"));
    // This host gets no certificates from a CA, so the ACME challenge path is the app's.
    let challenge = format!(
        "{}/.well-known/acme-challenge/probe",
        url.trim_end_matches('/')
    );
    let (status, body) = through_proxy(&host, Method::GET, &challenge, None, None).await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body.contains("Not Found") && !body.contains("\"ok\""),
        "answered by the app's own server, not the host: {body}"
    );

    // The container: capped, unprivileged, published on loopback only.
    let names = containers_of(&namespace);
    assert_eq!(names.len(), 1, "{names:?}");
    let inspect: Value = serde_json::from_str(&docker(&["inspect", &names[0]])).unwrap();
    let config = &inspect[0]["HostConfig"];
    assert_eq!(config["Memory"], 256 * 1024 * 1024);
    assert_eq!(config["NanoCpus"], 500_000_000);
    assert_eq!(config["Privileged"], false);
    assert_eq!(config["CapDrop"][0], "ALL");
    assert!(config["Binds"].is_null(), "no mounts: {}", config["Binds"]);
    let bindings = inspect[0]["NetworkSettings"]["Ports"]["8080/tcp"].clone();
    assert_eq!(bindings[0]["HostIp"], "127.0.0.1", "{bindings}");

    // The build streamed to the logs, which end with the terminator.
    let lines = sse_lines(&host, &format!("/deploy/{id}/logs")).await;
    assert_eq!(lines.last().map(String::as_str), Some("[end]"), "{lines:?}");

    // Redeploy by name: same id and URL, new content, old container retired.
    let reply = deploy(
        &host,
        &jwt,
        static_site("hello v2"),
        &[("name", "My Site"), ("redeploy", "true")],
    )
    .await;
    let again: DeploymentAnswer = reply.expect(202);
    assert_eq!(again.redeployed, Some(true));
    assert_eq!(again.id.to_string(), id);
    assert_eq!(again.url.as_deref(), Some(url.as_str()));
    wait_for(&host, &id, 2, &["healthy"], ROLLOUT).await;
    wait_for_body(&host, &url, "hello v2", Duration::from_secs(10)).await;
    assert_eq!(containers_of(&namespace).len(), 1);

    // POST /deploy/{id}/redeploy rebuilds the last upload.
    let reply = host
        .post_json(&format!("/deploy/{id}/redeploy"), Value::Null)
        .await;
    reply.expect::<DeploymentAnswer>(202);
    wait_for(&host, &id, 3, &["healthy"], ROLLOUT).await;
    wait_for_body(&host, &url, "hello v2", Duration::from_secs(10)).await;

    // Unknown apps get a clear page; JSON for clients that ask for it.
    let unknown = url.replace(app_id, "00000000");
    let (status, page) = through_proxy(&host, Method::GET, &unknown, None, None).await;
    assert_eq!(status, 404);
    assert!(page.contains("No app"), "{page}");
    let (status, json) =
        through_proxy(&host, Method::GET, &unknown, None, Some("application/json")).await;
    assert_eq!(status, 404);
    let json: ErrorBody = serde_json::from_str(&json).unwrap();
    assert_eq!(json.error, "app_not_found");

    // Delete: the URL stops answering, containers and images are gone.
    let reply = host.delete(&format!("/api/v1/deployments/{id}")).await;
    reply.expect::<DeploymentDeleted>(200);
    let (status, _) = through_proxy(&host, Method::GET, &url, None, None).await;
    assert_eq!(status, 404);
    assert!(containers_of(&namespace).is_empty());
    assert!(
        images_of(&namespace).is_empty(),
        "{:?}",
        images_of(&namespace)
    );
    let reply = host.get(&format!("/api/v1/deployments/{id}")).await;
    assert_error(&reply, 410, "resource_deleted");
}

#[tokio::test]
async fn failures_come_back_classified_with_their_output() {
    let host = TestHost::start(HostOptions::only(ProviderSpec::deploy())).await;
    let namespace = namespace_of(&host);

    // A build step that fails.
    let jwt = new_owner(&host).await;
    let broken = tarball(&[(
        "Dockerfile",
        "FROM instanode/busybox:1\nRUN echo compiling-the-app && echo missing-dependency-xyz >&2 && exit 3\n",
    )]);
    let reply = deploy(&host, &jwt, broken, &[("name", "broken-build")]).await;
    let id = reply.expect::<DeploymentAnswer>(202).id.to_string();
    let item = wait_for(&host, &id, 1, &["failed"], ROLLOUT).await;
    assert!(
        item.error.as_deref().unwrap().starts_with("BuildFailed"),
        "{item:?}"
    );
    let events: DeploymentEvents = host
        .get(&format!("/api/v1/deployments/{id}/events"))
        .await
        .expect(200);
    // The autopsy is free-form: reason, exit_code, last_lines, hint.
    let autopsy = &events.events[0];
    assert_eq!(autopsy["reason"], "BuildFailed", "{autopsy}");
    let last_lines = autopsy["last_lines"].to_string();
    assert!(
        last_lines.contains("missing-dependency-xyz"),
        "{last_lines}"
    );
    assert!(!autopsy["hint"].as_str().unwrap().is_empty());

    // An app that exits as it starts.
    let jwt = new_owner(&host).await;
    let crashing = tarball(&[(
        "Dockerfile",
        "FROM instanode/busybox:1\nCMD [\"sh\", \"-c\", \"echo config-file-not-found >&2; exit 7\"]\n",
    )]);
    let reply = deploy(&host, &jwt, crashing, &[("name", "crasher")]).await;
    let id = reply.json::<DeploymentAnswer>().id.to_string();
    wait_for(&host, &id, 1, &["failed"], ROLLOUT).await;
    let events: DeploymentEvents = host
        .get(&format!("/api/v1/deployments/{id}/events"))
        .await
        .json();
    let autopsy = &events.events[0];
    assert_eq!(autopsy["reason"], "CrashLoopBackOff", "{autopsy}");
    assert_eq!(autopsy["exit_code"], 7, "{autopsy}");
    assert!(
        autopsy["last_lines"]
            .to_string()
            .contains("config-file-not-found"),
        "{autopsy}"
    );

    // An app past its memory cap is killed and said to be.
    let jwt = new_owner(&host).await;
    let hungry = tarball(&[(
        "Dockerfile",
        "FROM instanode/busybox:1\nCMD [\"sh\", \"-c\", \"x=$(head -c 400000000 /dev/zero | tr '\\\\000' a); sleep 60\"]\n",
    )]);
    let reply = deploy(&host, &jwt, hungry, &[("name", "hungry")]).await;
    let id = reply.json::<DeploymentAnswer>().id.to_string();
    wait_for(&host, &id, 1, &["failed"], ROLLOUT).await;
    let events: DeploymentEvents = host
        .get(&format!("/api/v1/deployments/{id}/events"))
        .await
        .json();
    assert_eq!(events.events[0]["reason"], "OOMKilled", "{events:?}");

    // Failed rollouts leave no container behind.
    assert!(
        containers_of(&namespace).is_empty(),
        "{:?}",
        containers_of(&namespace)
    );
}

#[tokio::test]
async fn unsafe_or_invalid_uploads_are_refused_before_anything_is_built() {
    let host = TestHost::start(HostOptions::only(ProviderSpec::deploy())).await;
    let namespace = namespace_of(&host);
    let jwt = new_owner(&host).await;
    let site = || static_site("x");

    // No token, a bad token.
    let reply = upload(
        &host,
        "/deploy/new",
        None,
        &[("name", "a")],
        &[("tarball", site())],
    )
    .await;
    assert_error(&reply, 401, "unauthorized");
    let reply = deploy(&host, "not-a-jwt", site(), &[("name", "a")]).await;
    assert_error(&reply, 401, "unauthorized");

    // Form fields.
    assert_error(
        &deploy(&host, &jwt, site(), &[]).await,
        400,
        "name_required",
    );
    assert_error(
        &deploy(&host, &jwt, site(), &[("name", "../x")]).await,
        400,
        "invalid_name",
    );
    for port in ["0", "70000", "http"] {
        let reply = deploy(&host, &jwt, site(), &[("name", "a"), ("port", port)]).await;
        assert_error(&reply, 400, "invalid_port");
    }
    for env_vars in ["[1]", "{\"1X\":\"v\"}", "{\"A\":{\"b\":1}}", "not json"] {
        let reply = deploy(
            &host,
            &jwt,
            site(),
            &[("name", "a"), ("env_vars", env_vars)],
        )
        .await;
        assert_error(&reply, 400, "invalid_env_vars");
    }
    let reply = upload(&host, "/deploy/new", Some(&jwt), &[("name", "a")], &[]).await;
    assert_error(&reply, 400, "missing_tarball");
    let reply = deploy(
        &host,
        &jwt,
        site(),
        &[("name", "nothing-here"), ("redeploy", "true")],
    )
    .await;
    assert_error(&reply, 404, "no_existing_deployment_to_redeploy");

    // Hostile archives.
    let dockerfile = "FROM instanode/busybox:1\n";
    let raw = |path: &str, kind: tar::EntryType, link: Option<&str>| {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(dockerfile.len() as u64);
        header.set_cksum();
        builder
            .append_data(&mut header, "Dockerfile", dockerfile.as_bytes())
            .unwrap();
        let mut header = tar::Header::new_old();
        header.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
        header.set_entry_type(kind);
        header.set_size(0);
        if let Some(link) = link {
            header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        header.set_cksum();
        builder.append(&header, std::io::empty()).unwrap();
        instanode_tests::deploy::gzip(&builder.into_inner().unwrap())
    };
    let cases = [
        (
            raw("/etc/cron.d/x", tar::EntryType::Regular, None),
            "unsafe_tarball_path",
        ),
        (
            raw("../../escape", tar::EntryType::Regular, None),
            "unsafe_tarball_path",
        ),
        (
            raw("app/../../escape", tar::EntryType::Regular, None),
            "unsafe_tarball_path",
        ),
        (
            raw("hosts", tar::EntryType::Symlink, Some("/etc/hosts")),
            "unsafe_tarball_link",
        ),
        (
            raw("up", tar::EntryType::Symlink, Some("../../..")),
            "unsafe_tarball_link",
        ),
        (
            raw("shadow", tar::EntryType::Link, Some("/etc/shadow")),
            "unsafe_tarball_link",
        ),
        (
            raw("null", tar::EntryType::Char, None),
            "unsafe_tarball_entry",
        ),
        (
            raw("disk", tar::EntryType::Block, None),
            "unsafe_tarball_entry",
        ),
        (
            raw("pipe", tar::EntryType::Fifo, None),
            "unsafe_tarball_entry",
        ),
        (tarball(&[("app.py", "print(1)")]), "missing_dockerfile"),
        (b"definitely not gzip".to_vec(), "invalid_tarball"),
    ];
    for (archive, code) in cases {
        let reply = deploy(&host, &jwt, archive, &[("name", "hostile")]).await;
        assert_error(&reply, 400, code);
    }
    // A gzip bomb: small upload, huge content.
    let bomb = {
        let zeros = vec![0u8; 200 * 1024 * 1024];
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(zeros.len() as u64);
        header.set_cksum();
        builder
            .append_data(&mut header, "Dockerfile", zeros.as_slice())
            .unwrap();
        instanode_tests::deploy::gzip(&builder.into_inner().unwrap())
    };
    assert!(bomb.len() < 10 * 1024 * 1024);
    let reply = deploy(&host, &jwt, bomb, &[("name", "bomb")]).await;
    assert_error(&reply, 400, "tarball_unpacked_too_large");
    // Over 10 MB.
    // Incompressible enough: 16 MiB of pseudo-random base64 letters.
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let big: String = (0..16 * 1024 * 1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(alphabet[(state % 64) as usize])
        })
        .collect();
    let huge = tarball(&[("Dockerfile", dockerfile), ("blob.txt", &big)]);
    assert!(huge.len() > 10 * 1024 * 1024, "{}", huge.len());
    let reply = deploy(&host, &jwt, huge, &[("name", "huge")]).await;
    let refusal = assert_error(&reply, 413, "tarball_too_large");
    assert!(
        refusal
            .agent_action
            .as_deref()
            .unwrap()
            .contains("prebuilt image")
    );

    // Not multipart at all.
    let reply = host
        .post_json("/deploy/new", serde_json::json!({ "name": "x" }))
        .await;
    assert_error(&reply, 400, "invalid_form");

    // Nothing reached the engine or the metadata store.
    assert!(containers_of(&namespace).is_empty());
    assert!(images_of(&namespace).is_empty());
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM deployments")
        .fetch_one(&mut host.metadata().await)
        .await
        .unwrap();
    assert_eq!(rows, 0);

    // The tier's app limit (anonymous: one).
    let reply = deploy(&host, &jwt, site(), &[("name", "first")]).await;
    reply.expect::<DeploymentAnswer>(202);
    let reply = deploy(&host, &jwt, site(), &[("name", "second")]).await;
    assert_error(&reply, 402, "deployment_limit_reached");
}

#[tokio::test]
async fn apps_are_isolated_from_each_other_and_from_the_host() {
    let host = TestHost::start(HostOptions::only(ProviderSpec::deploy())).await;
    let (jwt_a, jwt_b) = (new_owner(&host).await, new_owner(&host).await);
    // A tiny server that also answers /probe?target=URL with what it could fetch.
    let prober = |marker: &str| {
        tarball(&[
            (
                "Dockerfile",
                "FROM instanode/busybox:1\nCOPY www /www\nRUN chmod +x /www/cgi-bin/probe\nCMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n",
            ),
            ("www/index.html", marker),
            (
                "www/cgi-bin/probe",
                "#!/bin/sh\necho 'Content-Type: text/plain'\necho\ntarget=$(echo \"$QUERY_STRING\" | sed 's/^target=//')\nif timeout 5 wget -q -O - \"$target\" 2>/dev/null; then echo REACHED; else echo BLOCKED; fi\n",
            ),
        ])
    };
    let a = deploy(&host, &jwt_a, prober("tenant-a"), &[("name", "a")]).await;
    let b = deploy(&host, &jwt_b, prober("tenant-b"), &[("name", "b")]).await;
    let (a, b) = (
        a.expect::<DeploymentAnswer>(202),
        b.expect::<DeploymentAnswer>(202),
    );
    let (id_a, id_b) = (a.id.to_string(), b.id.to_string());
    let url_a = a.url.clone().expect("an app URL");
    wait_for(&host, &id_a, 1, &["healthy"], ROLLOUT).await;
    wait_for(&host, &id_b, 1, &["healthy"], ROLLOUT).await;

    // B's container address, as the engine knows it.
    let namespace = namespace_of(&host);
    let b_hex = id_b_hex(&host, &id_b).await;
    let b_container = containers_of(&namespace)
        .into_iter()
        .find(|n| n.contains(&b_hex))
        .expect("B's container");
    let b_ip = docker(&[
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        &b_container,
    ]);
    let probe = |target: String| {
        let url = format!("{url_a}/cgi-bin/probe?target={target}");
        let host = &host;
        async move { through_proxy(host, Method::GET, &url, None, None).await.1 }
    };
    // The probe works (it reaches a public-facing thing: itself).
    assert!(
        probe("http://127.0.0.1:8080/".into())
            .await
            .contains("REACHED")
    );
    // B directly, the host's API, the host's loopback: all out of reach.
    assert!(
        probe(format!("http://{}:8080/", b_ip.trim()))
            .await
            .contains("BLOCKED")
    );
    let api_port = host.url.rsplit(':').next().unwrap().to_string();
    assert!(
        probe(format!("http://host.docker.internal:{api_port}/healthz"))
            .await
            .contains("BLOCKED")
    );

    // Tokens: A cannot read, redeploy or delete B's app; app ids are not credentials.
    let app_id_b = &b.app_id;
    assert_error(
        &host.get(&format!("/api/v1/deployments/{app_id_b}")).await,
        400,
        "invalid_token",
    );
    let reply = deploy(
        &host,
        &jwt_a,
        static_site("hijack"),
        &[("name", "b"), ("redeploy", "true")],
    )
    .await;
    assert_error(&reply, 404, "no_existing_deployment_to_redeploy");
    let reply = host
        .delete(&format!("/api/v1/deployments/{}", uuid::Uuid::new_v4()))
        .await;
    assert_error(&reply, 404, "resource_not_found");
    let url_b = b.url.as_deref().expect("an app URL");
    wait_for_body(&host, url_b, "tenant-b", Duration::from_secs(5)).await;

    // TTL expiry removes the apps like a delete.
    host.advance_clock(25 * 3600).await;
    host.reap().await;
    let (status, _) = through_proxy(&host, Method::GET, url_b, None, None).await;
    assert_eq!(status, 404);
    assert!(containers_of(&namespace).is_empty());
}

/// The resource hex of an app (its containers are named after it).
async fn id_b_hex(host: &TestHost, token: &str) -> String {
    let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM resources WHERE token = $1::uuid")
        .bind(token)
        .fetch_one(&mut host.metadata().await)
        .await
        .unwrap();
    id.simple().to_string()
}

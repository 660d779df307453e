//! Prebuilt images: `/deploy/new` with `image=` runs an image pushed to Debian's registry,
//! by digest or by tag; other registries and malformed references are refused before
//! anything starts, and an image that cannot be pulled fails with the registry's words.

use std::time::Duration;

use instanode::api::schema::{DeploymentAnswer, DeploymentDeleted, DeploymentEvents};
use instanode::store::DeploymentStatus;
use instanode_tests::deploy::{
    deploy, docker, namespace_of, new_owner, static_site, upload, wait_for, wait_for_body,
};
use instanode_tests::{HostOptions, ProviderSpec, TestHost, assert_error, env};

const ROLLOUT: Duration = Duration::from_secs(180);

/// Builds a busybox site answering `body`, pushes it to the test registry as
/// `<repository>:<tag>` and answers its pinned `repository@sha256:…` reference.
fn push_site(repository: &str, tag: &str, body: &str) -> String {
    let dir = std::env::temp_dir().join(format!("site-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM instanode/busybox:1\nCOPY index.html /www/index.html\nEXPOSE 8080\nCMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n",
    )
    .unwrap();
    std::fs::write(dir.join("index.html"), body).unwrap();
    let reference = format!("{repository}:{tag}");
    let built = std::process::Command::new("docker")
        .args(["build", "-q", "-t", &reference])
        .arg(&dir)
        .output()
        .expect("docker build runs");
    assert!(built.status.success(), "{built:?}");
    let pushed = std::process::Command::new("docker")
        .args(["push", &reference])
        .output()
        .expect("docker push runs");
    assert!(pushed.status.success(), "{pushed:?}");
    let digests = docker(&["inspect", "--format", "{{json .RepoDigests}}", &reference]);
    let digests: Vec<String> = serde_json::from_str(digests.trim()).unwrap();
    // Only the registry holds it now: the host must pull it.
    docker(&["rmi", &reference]);
    std::fs::remove_dir_all(&dir).ok();
    digests
        .into_iter()
        .find(|d| d.starts_with(&format!("{repository}@sha256:")))
        .expect("a registry digest")
}

/// The engine's images named under `namespace`, labelled or not.
fn named_images(namespace: &str) -> Vec<String> {
    docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"])
        .lines()
        .filter(|l| l.starts_with(&format!("{namespace}-")))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn a_prebuilt_image_runs_by_digest_and_by_tag() {
    let host = TestHost::start(HostOptions::only(ProviderSpec::deploy())).await;
    let namespace = namespace_of(&host);
    let jwt = new_owner(&host).await;
    let registry = env("INSTANODE_TEST_REGISTRY");
    let repository = format!("{registry}/site-{}", &namespace);
    let pinned = push_site(&repository, "v1", "prebuilt v1");

    // By digest.
    let answer: DeploymentAnswer = upload(
        &host,
        "/deploy/new",
        Some(&jwt),
        &[("name", "prebuilt"), ("image", &pinned)],
        &[],
    )
    .await
    .expect(202);
    let id = answer.id.to_string();
    let url = answer.url.clone().expect("an app URL");
    assert_eq!(answer.item.image.as_deref(), Some(pinned.as_str()));
    let item = wait_for(&host, &id, 1, &["healthy", "failed"], ROLLOUT).await;
    assert_eq!(item.status, DeploymentStatus::Healthy, "{item:?}");
    wait_for_body(&host, &url, "prebuilt v1", Duration::from_secs(10)).await;

    // By tag (another owner: an anonymous owner runs one app): the tag is resolved at
    // rollout, so a redeploy after a push runs the new one.
    let other = new_owner(&host).await;
    let tagged: DeploymentAnswer = upload(
        &host,
        "/deploy/new",
        Some(&other),
        &[("name", "tagged"), ("image", &format!("{repository}:v1"))],
        &[],
    )
    .await
    .expect(202);
    let tagged_id = tagged.id.to_string();
    let tagged_url = tagged.url.clone().expect("an app URL");
    wait_for(&host, &tagged_id, 1, &["healthy"], ROLLOUT).await;
    wait_for_body(&host, &tagged_url, "prebuilt v1", Duration::from_secs(10)).await;
    push_site(&repository, "v1", "prebuilt v1, pushed again");
    host.post_json(
        &format!("/deploy/{tagged_id}/redeploy"),
        serde_json::Value::Null,
    )
    .await
    .expect::<DeploymentAnswer>(202);
    wait_for(&host, &tagged_id, 2, &["healthy"], ROLLOUT).await;
    wait_for_body(
        &host,
        &tagged_url,
        "prebuilt v1, pushed again",
        Duration::from_secs(10),
    )
    .await;
    // The digest-pinned app still runs what it was deployed with.
    wait_for_body(&host, &url, "prebuilt v1", Duration::from_secs(10)).await;

    // A redeploy by name with a tarball turns an image app back into a built one.
    let rebuilt: DeploymentAnswer = deploy(
        &host,
        &other,
        static_site("built after all"),
        &[("name", "tagged"), ("redeploy", "true")],
    )
    .await
    .expect(202);
    assert_eq!(rebuilt.item.image, None);
    wait_for(&host, &tagged_id, 3, &["healthy"], ROLLOUT).await;
    wait_for_body(
        &host,
        &tagged_url,
        "built after all",
        Duration::from_secs(10),
    )
    .await;

    // Deleting the apps removes the images pulled for them.
    for id in [&id, &tagged_id] {
        host.delete(&format!("/api/v1/deployments/{id}"))
            .await
            .expect::<DeploymentDeleted>(200);
    }
    assert_eq!(named_images(&namespace), Vec::<String>::new());
}

#[tokio::test]
async fn images_from_elsewhere_are_refused_and_a_missing_one_fails_with_the_registrys_words() {
    let host = TestHost::start(HostOptions::only(ProviderSpec::deploy())).await;
    let jwt = new_owner(&host).await;
    let registry = env("INSTANODE_TEST_REGISTRY");
    let refused = |image: String| {
        let (host, jwt) = (&host, &jwt);
        async move {
            upload(
                host,
                "/deploy/new",
                Some(jwt),
                &[("name", "elsewhere"), ("image", &image)],
                &[],
            )
            .await
        }
    };
    for image in [
        "registry.example.com/team/app:1".to_string(),
        "nginx:1".to_string(),
        format!("{registry}/x@sha256:1234"),
        "a b".to_string(),
    ] {
        let reply = refused(image.clone()).await;
        assert_error(&reply, 400, "image_not_allowed");
        assert!(reply.error().agent_action.is_some(), "{image}");
    }
    let both = upload(
        &host,
        "/deploy/new",
        Some(&jwt),
        &[("name", "both"), ("image", &format!("{registry}/x:1"))],
        &[("tarball", static_site("x"))],
    )
    .await;
    assert_error(&both, 400, "image_and_tarball");

    let missing: DeploymentAnswer = refused(format!("{registry}/never-pushed:1"))
        .await
        .expect(202);
    let id = missing.id.to_string();
    let item = wait_for(&host, &id, 1, &["failed", "healthy"], ROLLOUT).await;
    assert_eq!(item.status, DeploymentStatus::Failed);
    let events: DeploymentEvents = host
        .get(&format!("/api/v1/deployments/{id}/events"))
        .await
        .json();
    let autopsy = &events.events[0];
    assert_eq!(autopsy["reason"], "BuildFailed", "{autopsy}");
    assert!(
        autopsy["hint"]
            .as_str()
            .unwrap_or_default()
            .contains("pulled"),
        "{autopsy}"
    );
    assert!(
        autopsy["last_lines"].to_string().contains("never-pushed"),
        "the registry's words: {autopsy}"
    );
}

/// The registry asks for a login: anonymous reads are refused, and a host not given the
/// login cannot pull what a logged-in client pushed.
#[tokio::test]
async fn the_registry_serves_only_with_the_operators_login() {
    let registry = env("INSTANODE_TEST_REGISTRY");
    let catalog = format!("http://{registry}/v2/_catalog");
    let anonymous = reqwest::get(&catalog).await.unwrap().status().as_u16();
    assert_eq!(anonymous, 401);
    let logged_in = reqwest::Client::new()
        .get(&catalog)
        .basic_auth(
            env("INSTANODE_TEST_REGISTRY_USER"),
            Some(env("INSTANODE_TEST_REGISTRY_PASSWORD")),
        )
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(logged_in, 200);

    let mut without_login = ProviderSpec::deploy();
    without_login
        .config
        .containers
        .as_mut()
        .unwrap()
        .registry_logins = Vec::new();
    let host = TestHost::start(HostOptions::only(without_login)).await;
    let namespace = namespace_of(&host);
    let pinned = push_site(&format!("{registry}/site-{namespace}"), "v1", "private");
    let jwt = new_owner(&host).await;
    let answer: DeploymentAnswer = upload(
        &host,
        "/deploy/new",
        Some(&jwt),
        &[("name", "private"), ("image", &pinned)],
        &[],
    )
    .await
    .expect(202);
    let item = wait_for(&host, &answer.id.to_string(), 1, &["failed"], ROLLOUT).await;
    let autopsy = item.failure.expect("an autopsy").to_string();
    assert!(
        autopsy.contains("no basic auth credentials") || autopsy.contains("unauthorized"),
        "the registry's refusal: {autopsy}"
    );
}

//! Helpers for deploy tests: tarballs, multipart uploads, waiting on rollouts, reaching an
//! app through the host's proxy, and asking the real Docker Engine what runs.

use std::io::Write as _;
use std::time::{Duration, Instant};

use instanode::api::schema::{Created, Deployment, DeploymentAnswer};

use super::{Reply, TestHost, reply};

/// A gzipped tar of `files` (path, contents), as `tar czf` would make it.
pub fn tarball(files: &[(&str, &str)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, contents) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(contents.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, path, contents.as_bytes())
            .expect("tar member");
    }
    gzip(&builder.into_inner().expect("tar"))
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

/// A busybox web server answering `body` at `/` on port 8080.
pub fn static_site(body: &str) -> Vec<u8> {
    tarball(&[
        (
            "Dockerfile",
            "FROM instanode/busybox:1\nCOPY index.html /www/index.html\nEXPOSE 8080\nCMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n",
        ),
        ("index.html", body),
    ])
}

/// The upgrade token of a fresh owner (a webhook provisioned from a new client address).
pub async fn new_owner(host: &TestHost) -> String {
    host.post_json("/webhook/new", serde_json::json!({ "name": "owner" }))
        .await
        .expect::<Created>(201)
        .upgrade_jwt
}

/// `POST path` as multipart: `fields` as text, `files` as file parts.
pub async fn upload(
    host: &TestHost,
    path: &str,
    jwt: Option<&str>,
    fields: &[(&str, &str)],
    files: &[(&str, Vec<u8>)],
) -> Reply {
    let mut form = reqwest::multipart::Form::new();
    for (name, value) in fields {
        form = form.text(name.to_string(), value.to_string());
    }
    for (name, bytes) in files {
        let part =
            reqwest::multipart::Part::bytes(bytes.clone()).file_name(format!("{name}.tar.gz"));
        form = form.part(name.to_string(), part);
    }
    let mut request = host
        .http
        .post(format!("{}{path}", host.url))
        .multipart(form)
        .header("x-forwarded-for", host.fresh_client());
    if let Some(jwt) = jwt {
        request = request.bearer_auth(jwt);
    }
    reply(request.send().await.expect("request reaches the host")).await
}

/// `POST /deploy/new` with a tarball and form fields.
pub async fn deploy(
    host: &TestHost,
    jwt: &str,
    tarball: Vec<u8>,
    fields: &[(&str, &str)],
) -> Reply {
    upload(
        host,
        "/deploy/new",
        Some(jwt),
        fields,
        &[("tarball", tarball)],
    )
    .await
}

/// Polls the app until its status is one of `wanted` (and its generation at least
/// `generation`); panics after `within`.
pub async fn wait_for(
    host: &TestHost,
    id: &str,
    generation: u64,
    wanted: &[&str],
    within: Duration,
) -> Deployment {
    let started = Instant::now();
    loop {
        let item = host
            .get(&format!("/api/v1/deployments/{id}"))
            .await
            .expect::<DeploymentAnswer>(200)
            .item;
        let status = item.status.as_str();
        if u64::try_from(item.generation).unwrap_or(0) >= generation && wanted.contains(&status) {
            return item;
        }
        assert!(
            started.elapsed() < within,
            "app {id} still {status} after {within:?}: {item:?}\nhost log:\n{}",
            host.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Sends a request for `url` (an app URL) to the host, with the URL's host as `Host`.
pub async fn through_proxy(
    host: &TestHost,
    method: reqwest::Method,
    url: &str,
    body: Option<String>,
    accept: Option<&str>,
) -> (u16, String) {
    try_through_proxy(host, method, url, body, accept)
        .await
        .expect("the proxy answers")
}

/// [`through_proxy`], with a failed exchange as an error.
pub async fn try_through_proxy(
    host: &TestHost,
    method: reqwest::Method,
    url: &str,
    body: Option<String>,
    accept: Option<&str>,
) -> reqwest::Result<(u16, String)> {
    let parsed = url::Url::parse(url).expect("app URL");
    let authority = match parsed.port() {
        Some(port) => format!("{}:{port}", parsed.host_str().unwrap_or_default()),
        None => parsed.host_str().unwrap_or_default().to_string(),
    };
    let path = match parsed.query() {
        Some(q) => format!("{}?{q}", parsed.path()),
        None => parsed.path().to_string(),
    };
    let mut request = host
        .http
        .request(method, format!("{}{path}", host.url))
        .header("host", authority);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body);
    }
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    Ok((status, response.text().await.unwrap_or_default()))
}

/// A GET of app URL `app_url` sent to `base` (a host, or a balancer in front of hosts), with
/// the app's name and `base`'s port as `Host`; a failed exchange is an error.
pub async fn try_app_via(
    http: &reqwest::Client,
    base: &str,
    app_url: &str,
) -> reqwest::Result<(u16, String)> {
    let app = url::Url::parse(app_url).expect("app URL");
    let port = url::Url::parse(base)
        .ok()
        .and_then(|b| b.port_or_known_default())
        .unwrap_or(80);
    let response = http
        .get(format!("{base}{}", app.path()))
        .header(
            "host",
            format!("{}:{port}", app.host_str().unwrap_or_default()),
        )
        .send()
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.text().await.unwrap_or_default()))
}

/// GET `url` through the proxy until it answers 200 with a body containing `text`.
pub async fn wait_for_body(host: &TestHost, url: &str, text: &str, within: Duration) -> String {
    let started = Instant::now();
    loop {
        // A reused connection the host closed while idle fails the exchange; the next poll
        // opens a new one.
        let answer = try_through_proxy(host, reqwest::Method::GET, url, None, None).await;
        if let Ok((200, body)) = &answer
            && body.contains(text)
        {
            return body.clone();
        }
        assert!(
            started.elapsed() < within,
            "{url} answered {answer:?}, not {text:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The container namespace of a host started with [`super::ProviderSpec::deploy`].
pub fn namespace_of(host: &TestHost) -> String {
    let config = std::fs::read_to_string(host.dir.join("instanode.toml")).expect("config");
    config
        .lines()
        .find_map(|l| l.strip_prefix("namespace = "))
        .expect("a deploy namespace")
        .trim_matches('"')
        .to_string()
}

/// Runs the Docker CLI against the machine's engine; its stdout.
pub fn docker(args: &[&str]) -> String {
    let output = std::process::Command::new("docker")
        .args(args)
        .output()
        .expect("the docker CLI runs");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Names of the containers (running or not) of a host's namespace.
pub fn containers_of(namespace: &str) -> Vec<String> {
    docker(&[
        "ps",
        "-a",
        "--filter",
        &format!("label=dev.instanode.namespace={namespace}"),
        "--format",
        "{{.Names}}",
    ])
    .lines()
    .map(str::to_string)
    .collect()
}

/// Tags of the images of a host's namespace.
pub fn images_of(namespace: &str) -> Vec<String> {
    docker(&[
        "images",
        "--filter",
        &format!("label=dev.instanode.namespace={namespace}"),
        "--format",
        "{{.Repository}}:{{.Tag}}",
    ])
    .lines()
    .filter(|l| l.starts_with(namespace))
    .map(str::to_string)
    .collect()
}

/// Reads an SSE response into its `data:` lines.
pub async fn sse_lines(host: &TestHost, path: &str) -> Vec<String> {
    let response = host
        .http
        .get(format!("{}{path}", host.url))
        .send()
        .await
        .expect("logs answer");
    assert_eq!(response.status().as_u16(), 200);
    let text = response.text().await.unwrap_or_default();
    text.lines()
        .filter_map(|l| l.strip_prefix("data: ").or_else(|| l.strip_prefix("data:")))
        .map(str::to_string)
        .collect()
}

/// Removes every service, container, image and network of a namespace.
pub fn remove_namespace(namespace: &str) {
    let label = format!("label=dev.instanode.namespace={namespace}");
    let ids = |object: &str| -> Vec<String> {
        docker(&[object, "ls", "--filter", &label, "--format", "{{.ID}}"])
            .lines()
            .map(str::to_string)
            .collect()
    };
    let remove = |command: &[&str], names: Vec<String>| {
        if !names.is_empty() {
            let mut args = command.to_vec();
            args.extend(names.iter().map(String::as_str));
            docker(&args);
        }
    };
    remove(&["service", "rm"], ids("service"));
    remove(&["rm", "-f"], containers_of(namespace));
    remove(&["rmi", "-f"], images_of(namespace));
    remove(&["network", "rm"], ids("network"));
}

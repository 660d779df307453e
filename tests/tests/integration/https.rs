//! HTTPS at the edge against a real ACME CA (Debian's pebble, on loopback): app URLs under a
//! wildcard certificate (DNS-01 through the operator's hook), the API under the operator's
//! own certificate, custom domains going pending → active (HTTP-01), a CA refusal showing in
//! the domain's status, and a renewal that drops no request.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use instanode::api::schema::{
    DeploymentAnswer, DomainAnswer, DomainList, DomainRemoved, Stack, StackCreated,
};
use instanode::store::DeploymentStatus;
use instanode_tests::acme::{Pebble, PebbleOptions};
use instanode_tests::deploy::{deploy, static_site, upload, wait_for};
use instanode_tests::{HostOptions, ProviderSpec, TestHost, env, free_port};
use serde_json::json;

const ROLLOUT: Duration = Duration::from_secs(180);
const APPS: &str = "apps.test";

/// A host serving HTTPS on a port of its own, getting certificates from `pebble`, whose
/// HTTP-01 checks reach the host's HTTP port.
struct Edge {
    host: TestHost,
    pebble: Pebble,
    https_port: u16,
}

impl Edge {
    async fn start(wildcard: bool, validity_secs: u64, blocked: &[&str]) -> Self {
        let http_port = free_port().unwrap();
        let https_port = free_port().unwrap();
        let pebble = Pebble::start(PebbleOptions {
            http_port,
            validity_secs,
            blocked: blocked.iter().map(|b| b.to_string()).collect(),
        })
        .await;
        let mut extra = pebble.host_config(https_port, APPS, wildcard);
        // The API's own name (an address here, so no SNI) is served the operator's certificate.
        extra = extra.replacen(
            "[tls]\n",
            &format!(
                "[tls]\ncertificate = {:?}\nprivate_key = {:?}\n",
                env("INSTANODE_TEST_ACME_CERT"),
                env("INSTANODE_TEST_ACME_KEY")
            ),
            1,
        );
        let host = TestHost::start(HostOptions {
            port: Some(http_port),
            extra,
            ..HostOptions::only(ProviderSpec::deploy())
        })
        .await;
        Self {
            host,
            pebble,
            https_port,
        }
    }

    /// A client that trusts only pebble's issuing root and reaches `names` on this host.
    fn client(&self, names: &[&str]) -> reqwest::Client {
        let mut builder = reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(
                reqwest::Certificate::from_pem(self.pebble.issuing_root.as_bytes()).unwrap(),
            )
            .tls_info(true)
            .timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(0);
        for name in names {
            builder = builder.resolve(name, SocketAddr::from(([127, 0, 0, 1], self.https_port)));
        }
        builder.build().unwrap()
    }

    /// GETs `url` until it answers 200 over HTTPS, returning the body and the certificate.
    async fn wait_for_https(&self, client: &reqwest::Client, url: &str) -> (String, Served) {
        let began = Instant::now();
        loop {
            match get(client, url).await {
                Ok((200, body, served)) => return (body, served),
                other => assert!(
                    began.elapsed() < Duration::from_secs(90),
                    "{url} never answered over HTTPS: {other:?}\n{}\n{}",
                    self.host.log(),
                    self.pebble.log()
                ),
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// The certificate a response came with.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Served {
    serial: String,
    names: Vec<String>,
    not_after: i64,
}

async fn get(client: &reqwest::Client, url: &str) -> Result<(u16, String, Served), String> {
    let response = client.get(url).send().await.map_err(|e| format!("{e:?}"))?;
    let der = response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .map(<[u8]>::to_vec)
        .ok_or("no certificate")?;
    let (_, certificate) = x509_parser::parse_x509_certificate(&der).map_err(|e| e.to_string())?;
    let names = certificate
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .map(|name| name.to_string())
                .collect()
        })
        .unwrap_or_default();
    let served = Served {
        serial: certificate.raw_serial_as_string(),
        names,
        not_after: certificate.validity().not_after.timestamp(),
    };
    let status = response.status().as_u16();
    Ok((status, response.text().await.unwrap_or_default(), served))
}

/// A team on `tier`, signed in: its session token.
async fn team_on(host: &TestHost, tier: &str) -> String {
    let email = format!("tls-{}@example.com", uuid::Uuid::new_v4().simple());
    let session = host.sign_in(&email).await.token;
    host.set_team_tier(&email, tier).await;
    session
}

async fn deploy_site(host: &TestHost, owner: &str, name: &str, body: &str) -> (String, String) {
    let answer: DeploymentAnswer = deploy(host, owner, static_site(body), &[("name", name)])
        .await
        .expect(202);
    let id = answer.id.to_string();
    wait_for(host, &id, 1, &["healthy"], ROLLOUT).await;
    (id, answer.url.expect("an app URL"))
}

#[tokio::test]
async fn apps_are_served_over_https_under_a_wildcard_certificate_from_the_ca() {
    let edge = Edge::start(true, 3600, &[]).await;
    let owner = team_on(&edge.host, "hobby").await;
    let (_, url) = deploy_site(&edge.host, &owner, "secure", "served over tls").await;
    let app = url::Url::parse(&url).unwrap();
    let name = app.host_str().unwrap().to_string();
    assert_eq!(app.scheme(), "https", "{url}");
    assert_eq!(app.port(), Some(edge.https_port));

    // A client trusting only the CA's root gets the app, under the wildcard certificate.
    let client = edge.client(&[&name]);
    let (body, served) = edge.wait_for_https(&client, &url).await;
    assert_eq!(body.trim(), "served over tls");
    assert_eq!(served.names, vec![format!("DNSName(*.{APPS})")]);

    // A second replica on the same metadata database serves the same certificate, which it
    // did not ask the CA for.
    let replica_port = free_port().unwrap();
    let replica = TestHost::start(HostOptions {
        metadata_db: Some(edge.host.metadata_db.clone()),
        extra: edge.pebble.host_config(replica_port, APPS, true),
        ..HostOptions::only(ProviderSpec::deploy())
    })
    .await;
    let through_replica = format!("https://{name}:{replica_port}/");
    let replica_client = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(
            reqwest::Certificate::from_pem(edge.pebble.issuing_root.as_bytes()).unwrap(),
        )
        .tls_info(true)
        .resolve(&name, SocketAddr::from(([127, 0, 0, 1], replica_port)))
        .build()
        .unwrap();
    let (status, body, on_replica) = get(&replica_client, &through_replica).await.unwrap();
    assert_eq!((status, body.trim()), (200, "served over tls"));
    assert_eq!(on_replica.serial, served.serial);
    drop(replica);

    // curl agrees, with the CA's root and nothing else.
    let curl = std::process::Command::new("curl")
        .args(["-sS", "--fail", "--cacert"])
        .arg(&edge.pebble.issuing_root_path)
        .args([
            "--resolve",
            &format!("{name}:{}:127.0.0.1", edge.https_port),
            &url,
        ])
        .output()
        .unwrap();
    assert!(
        curl.status.success(),
        "{}",
        String::from_utf8_lossy(&curl.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&curl.stdout).trim(),
        "served over tls"
    );

    // A client that does not trust the CA is refused: the chain is real.
    let untrusting = reqwest::Client::builder()
        .resolve(&name, SocketAddr::from(([127, 0, 0, 1], edge.https_port)))
        .build()
        .unwrap();
    let refused = untrusting.get(&url).send().await.unwrap_err();
    assert!(refused.is_connect(), "{refused:?}");

    // Plain HTTP for the app is redirected to HTTPS; ACME answers never are.
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let http_port = edge.host.url.rsplit(':').next().unwrap().to_string();
    let redirected = plain
        .get(format!("{}/path?q=1", edge.host.url))
        .header("host", format!("{name}:{http_port}"))
        .send()
        .await
        .unwrap();
    assert_eq!(redirected.status().as_u16(), 308);
    assert_eq!(
        redirected.headers()["location"],
        format!("https://{name}:{}/path?q=1", edge.https_port).as_str()
    );
    let challenge = plain
        .get(format!(
            "{}/.well-known/acme-challenge/unknown",
            edge.host.url
        ))
        .header("host", format!("{name}:{http_port}"))
        .send()
        .await
        .unwrap();
    assert_eq!(challenge.status().as_u16(), 404);

    // The API over HTTPS, under the operator's certificate.
    let api = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(env("INSTANODE_TEST_ACME_CA")).unwrap())
                .unwrap(),
        )
        .build()
        .unwrap();
    let health = api
        .get(format!("https://127.0.0.1:{}/healthz", edge.https_port))
        .send()
        .await
        .expect("the API answers over HTTPS");
    assert_eq!(health.status().as_u16(), 200);
}

#[tokio::test]
async fn a_custom_domain_goes_from_pending_to_active_and_a_refusal_shows_in_its_status() {
    let edge = Edge::start(false, 3600, &["blocked.example"]).await;
    let host = &edge.host;
    let owner = team_on(host, "pro").await;
    let (id, _) = deploy_site(host, &owner, "shop", "the shop").await;
    let domains = format!("/api/v1/deployments/{id}/domains");

    let added: DomainAnswer = host
        .post_json(&domains, json!({"domain": "Shop.Example.com"}))
        .await
        .expect(201);
    assert_eq!(added.item.domain, "shop.example.com");
    assert_eq!(added.item.status, "pending_verification");
    assert_eq!(added.item.tls_status, "pending");
    assert_eq!(
        added.item.verification.name,
        "_instanode-challenge.shop.example.com"
    );
    assert!(added.item.agent_action.is_some());

    // The app keeps pending until the TXT record holds the token.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let listed: DomainList = host.get(&domains).await.expect(200);
    assert_eq!(listed.items[0].status, "pending_verification");
    edge.pebble
        .set_txt(&added.item.verification.name, "not-the-token")
        .await;
    let checked: DomainAnswer = host
        .post_json(&format!("{domains}/shop.example.com/verify"), json!({}))
        .await
        .expect(200);
    assert_eq!(checked.item.status, "pending_verification");

    // Asking for a name holds nothing: another team may ask too, with its own token.
    let other = team_on(host, "pro").await;
    let (other_id, _) = deploy_site(host, &other, "copycat", "not the shop").await;
    let other_domains = format!("/api/v1/deployments/{other_id}/domains");
    let squatter: DomainAnswer = host
        .post_json(&other_domains, json!({"domain": "shop.example.com"}))
        .await
        .expect(201);
    assert_ne!(
        squatter.item.verification.value,
        added.item.verification.value
    );

    // With the record in place it is proven, certified and served.
    edge.pebble
        .set_txt(
            &added.item.verification.name,
            &added.item.verification.value,
        )
        .await;
    let mut seen = BTreeSet::new();
    let began = Instant::now();
    let active = loop {
        let listed: DomainList = host.get(&domains).await.expect(200);
        let item = listed.items[0].clone();
        seen.insert(item.status.clone());
        if item.status == "active" {
            break item;
        }
        assert!(
            item.status != "failed" && began.elapsed() < Duration::from_secs(90),
            "{item:?}\n{}",
            host.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(active.tls_status, "active");
    assert!(active.certificate_expires_at.is_some());
    assert!(active.agent_action.is_none());
    let client = edge.client(&["shop.example.com"]);
    let url = format!("https://shop.example.com:{}/", edge.https_port);
    let (body, served) = edge.wait_for_https(&client, &url).await;
    assert_eq!(body.trim(), "the shop");
    assert_eq!(served.names, vec!["DNSName(shop.example.com)".to_string()]);

    // The proof went to the owner: the other request is gone, and asking again is refused.
    let listed: DomainList = host.get(&other_domains).await.expect(200);
    assert!(listed.items.is_empty(), "{listed:?}");
    let taken = host
        .post_json(&other_domains, json!({"domain": "shop.example.com"}))
        .await;
    assert_eq!(taken.status.as_u16(), 409, "{}", taken.body);
    assert_eq!(taken.error().error, "hostname_taken");

    // The host's own names and non-names are refused.
    for domain in [
        format!("x.{APPS}"),
        "127.0.0.1".into(),
        "*.example.com".into(),
    ] {
        let refused = host.post_json(&domains, json!({"domain": domain})).await;
        assert_eq!(refused.status.as_u16(), 400, "{domain}: {}", refused.body);
        assert_eq!(refused.error().error, "invalid_domain");
    }

    // A name the CA refuses: the refusal is the domain's status, the host carries on.
    let blocked: DomainAnswer = host
        .post_json(&domains, json!({"domain": "blocked.example"}))
        .await
        .expect(201);
    edge.pebble
        .set_txt(
            &blocked.item.verification.name,
            &blocked.item.verification.value,
        )
        .await;
    let began = Instant::now();
    let failed = loop {
        let listed: DomainList = host.get(&domains).await.expect(200);
        let item = listed
            .items
            .iter()
            .find(|d| d.domain == "blocked.example")
            .unwrap()
            .clone();
        if item.status == "failed" {
            break item;
        }
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "{item:?}\n{}",
            host.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let error = failed.error.clone().unwrap_or_default();
    assert!(
        error.contains("rejectedIdentifier") || error.contains("blocked"),
        "{failed:?}"
    );
    assert!(failed.agent_action.unwrap().contains("refused"));
    let (body, _) = edge.wait_for_https(&client, &url).await;
    assert_eq!(body.trim(), "the shop", "the other domain still serves");

    // Removed: no longer routed, over either scheme.
    let removed: DomainRemoved = host
        .delete(&format!("{domains}/shop.example.com"))
        .await
        .expect(200);
    assert!(removed.deleted);
    let plain = reqwest::Client::new()
        .get(format!("{}/", host.url))
        .header("host", "shop.example.com")
        .send()
        .await
        .unwrap();
    assert_ne!(plain.text().await.unwrap().trim(), "the shop");
    // A new client (no session to resume) gets no certificate for it.
    let fresh = edge.client(&["shop.example.com"]);
    assert!(
        get(&fresh, &url).await.is_err(),
        "no certificate is served for it"
    );
}

#[tokio::test]
async fn custom_domains_follow_the_tier() {
    let edge = Edge::start(false, 3600, &[]).await;
    let host = &edge.host;
    let free = team_on(host, "free").await;
    let (id, _) = deploy_site(host, &free, "free-app", "free").await;
    let refused = host
        .post_json(
            &format!("/api/v1/deployments/{id}/domains"),
            json!({"domain": "free.example.com"}),
        )
        .await;
    assert_eq!(refused.status.as_u16(), 402, "{}", refused.body);
    assert_eq!(refused.error().error, "upgrade_required");
    assert!(refused.error().agent_action.is_some());

    // hobby_plus allows one.
    let small = team_on(host, "hobby_plus").await;
    let (id, _) = deploy_site(host, &small, "small-app", "small").await;
    let path = format!("/api/v1/deployments/{id}/domains");
    host.post_json(&path, json!({"domain": "one.example.com"}))
        .await
        .expect::<DomainAnswer>(201);
    let over = host
        .post_json(&path, json!({"domain": "two.example.com"}))
        .await;
    assert_eq!(over.status.as_u16(), 402, "{}", over.body);
    assert_eq!(over.error().error, "custom_domain_limit_reached");
}

#[tokio::test]
async fn renewal_replaces_an_expiring_certificate_without_dropping_a_request() {
    // Certificates for 30 s, renewed with a third left: a new one about every 20 s.
    let edge = Edge::start(true, 30, &[]).await;
    let owner = team_on(&edge.host, "hobby").await;
    let (_, url) = deploy_site(&edge.host, &owner, "renewed", "still here").await;
    let name = url::Url::parse(&url)
        .unwrap()
        .host_str()
        .unwrap()
        .to_string();
    let client = edge.client(&[&name]);
    let (_, first) = edge.wait_for_https(&client, &url).await;

    // A full handshake per request (a new client: no session to resume), for 35 s: every
    // one answers, and the certificate changes.
    let began = Instant::now();
    let mut served = BTreeSet::new();
    let mut sent = 0;
    let mut failures = Vec::new();
    while began.elapsed() < Duration::from_secs(35) {
        sent += 1;
        match get(&edge.client(&[&name]), &url).await {
            Ok((200, body, certificate)) if body.trim() == "still here" => {
                served.insert((certificate.not_after, certificate.serial));
            }
            other => failures.push(format!("{other:?}")),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(sent > 100, "{sent}");
    assert!(
        failures.is_empty(),
        "{} of {sent} failed: {failures:?}",
        failures.len()
    );
    assert!(
        served.len() >= 2,
        "never renewed: {served:?}\n{}",
        edge.host.log()
    );
    let last = served.iter().next_back().unwrap();
    assert!(last.0 > first.not_after, "{served:?}");
}

#[tokio::test]
async fn a_stack_service_is_served_at_a_custom_domain() {
    let edge = Edge::start(false, 3600, &[]).await;
    let host = &edge.host;
    let owner = team_on(host, "pro").await;
    let manifest = "services:\n  web:\n    build: .\n    port: 8080\n    expose: true\n";
    let created: StackCreated = upload(
        host,
        "/stacks/new",
        Some(&owner),
        &[("name", "storefront"), ("manifest", manifest)],
        &[("web", static_site("the storefront"))],
    )
    .await
    .expect(202);
    let bearer = format!("Bearer {owner}");
    let auth = [("authorization", bearer.as_str())];
    let began = Instant::now();
    loop {
        let stack: Stack = host
            .get_with(&format!("/api/v1/stacks/{}", created.slug), &auth)
            .await
            .expect(200);
        if stack.status == DeploymentStatus::Healthy {
            break;
        }
        assert!(began.elapsed() < ROLLOUT, "{stack:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let domains = format!("/api/v1/stacks/{}/domains", created.slug);
    let post = |body: serde_json::Value| {
        host.post(
            &domains,
            Some("application/json"),
            body.to_string().into_bytes(),
            &auth,
        )
    };
    let unknown = post(json!({"domain": "store.example.net", "service": "api"})).await;
    assert_eq!(unknown.status.as_u16(), 400, "{}", unknown.body);
    assert_eq!(unknown.error().error, "unknown_service");
    let added: DomainAnswer = post(json!({"domain": "store.example.net", "service": "web"}))
        .await
        .expect(201);
    assert_eq!(added.item.service.as_deref(), Some("web"));
    edge.pebble
        .set_txt(
            &added.item.verification.name,
            &added.item.verification.value,
        )
        .await;
    let client = edge.client(&["store.example.net"]);
    let url = format!("https://store.example.net:{}/", edge.https_port);
    let (body, _) = edge.wait_for_https(&client, &url).await;
    assert_eq!(body.trim(), "the storefront");
    let listed: DomainList = host.get_with(&domains, &auth).await.expect(200);
    assert_eq!(listed.items[0].status, "active");
    // Without the owner's credential the stack's domains are not there to see.
    let stranger = host.get(&domains).await;
    assert_eq!(stranger.status.as_u16(), 401, "{}", stranger.body);
}

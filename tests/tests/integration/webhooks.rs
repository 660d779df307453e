//! `POST /webhook/new` and the receiver: every method captured with its body and redacted
//! headers, a ring of the newest N, optional HMAC signatures, durable across restarts.

use hmac::{Hmac, Mac};
use instanode::api::schema::{Created, ErrorBody, Received, WebhookRequest, WebhookRequests};
use instanode_tests::{HostOptions, ProviderFields, TestHost, assert_error};
use serde_json::{Value, json};
use sha2::Sha256;

fn options() -> HostOptions {
    HostOptions {
        providers: vec![],
        ..HostOptions::default()
    }
}

fn receive_path(body: &Created) -> String {
    let url = body.field("receive_url");
    url[url.find("/webhook/").unwrap()..].to_string()
}

async fn stored(host: &TestHost, body: &Created) -> Vec<WebhookRequest> {
    let token = body.token;
    host.get(&format!("/api/v1/webhooks/{token}/requests?limit=100"))
        .await
        .expect::<WebhookRequests>(200)
        .requests
}

#[tokio::test]
async fn every_method_is_captured_with_body_and_redacted_headers() {
    let host = TestHost::start(options()).await;
    let reply = host.try_provision("webhook", "github-events", &[]).await;
    let body: Created = reply.expect(201);
    let token = body.token.to_string();
    let receive_url = body.field("receive_url");
    assert!(receive_url.starts_with(&format!("{}/webhook/receive/", host.url)));
    // Senders get a receive id of their own, never the owner's token.
    assert!(!receive_url.contains(&token), "{receive_url}");
    // Left out, not null: only the raw answer tells.
    assert!(reply.body.get("internal_url").is_none());
    assert_eq!(body.connection_url, receive_url);
    let owner_path = format!("/webhook/receive/{token}");
    assert_error(
        &host.post_json(&owner_path, json!({})).await,
        404,
        "resource_not_found",
    );
    assert_eq!(body.limits.values["requests_stored"], 100);
    assert!(body.expires_at.is_some());

    let url = format!("{}{}", host.url, receive_path(&body));
    let methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"];
    for method in methods {
        let reply = host
            .http
            .request(
                method.parse().unwrap(),
                format!("{url}/sub/path?x=1&y={method}"),
            )
            .header("Authorization", "Bearer top-secret")
            .header("Cookie", "session=abc")
            .header("X-Api-Key", "k-123")
            .header("X-Auth-Token", "t-456")
            .header("Proxy-Authorization", "Basic Zm9v")
            .header("X-Event", "push")
            .body(format!("payload for {method}"))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status().as_u16(), 200, "{method}");
    }
    let requests = stored(&host, &body).await;
    assert_eq!(requests.len(), methods.len());
    // Newest first.
    let seen: Vec<&str> = requests.iter().map(|r| r.method.as_str()).collect();
    let mut expected = methods.to_vec();
    expected.reverse();
    assert_eq!(seen, expected);
    let post = requests.iter().find(|r| r.method == "POST").unwrap();
    assert_eq!(post.body, "payload for POST");
    assert_eq!(post.path, format!("{}/sub/path", receive_path(&body)));
    assert_eq!(post.query, "x=1&y=POST");
    let headers = &post.headers;
    for secret in [
        "authorization",
        "cookie",
        "x-api-key",
        "x-auth-token",
        "proxy-authorization",
    ] {
        assert_eq!(headers[secret], "[redacted]", "{secret}");
    }
    assert_eq!(headers["x-event"], "push");
    let text = serde_json::to_string(&requests).unwrap();
    for leaked in ["top-secret", "session=abc", "k-123", "t-456", "Zm9v"] {
        assert!(!text.contains(leaked), "{leaked} was stored");
    }
}

#[tokio::test]
async fn the_ring_keeps_exactly_n_and_bodies_are_capped() {
    let host = TestHost::start(options()).await;
    let body = host.provision("webhook", "ring").await;
    let path = receive_path(&body);
    for i in 0..105 {
        let reply = host.post_json(&path, json!({"n": i})).await;
        // `id` is an integer: what `Received` reads.
        reply.expect::<Received>(200);
    }
    let requests = stored(&host, &body).await;
    assert_eq!(requests.len(), 100);
    assert_eq!(requests[0].body, r#"{"n":104}"#);
    assert_eq!(requests[99].body, r#"{"n":5}"#);
    // Pages: 60, then the 40 older ones.
    let token = body.token.to_string();
    let first: WebhookRequests = host
        .get(&format!("/api/v1/webhooks/{token}/requests?limit=60"))
        .await
        .json();
    assert_eq!(first.count, 60);
    let before = first.next_before.unwrap();
    let rest: WebhookRequests = host
        .get(&format!(
            "/api/v1/webhooks/{token}/requests?limit=60&before={before}"
        ))
        .await
        .json();
    assert_eq!(rest.count, 40);
    assert_eq!(rest.requests[39].body, r#"{"n":5}"#);
    assert!(rest.next_before.is_none());

    let url = format!("{}{path}", host.url);
    let at_limit = host
        .http
        .post(&url)
        .body(vec![b'a'; 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(at_limit.status().as_u16(), 200);
    let over = host
        .http
        .post(&url)
        .body(vec![b'a'; 1024 * 1024 + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(over.status().as_u16(), 413);
    let envelope: ErrorBody = over.json().await.unwrap();
    assert_eq!(envelope.error, "payload_too_large");
    let binary = host
        .http
        .post(&url)
        .body(vec![0xff, 0x00, 0xfe])
        .send()
        .await
        .unwrap();
    assert_eq!(binary.status().as_u16(), 200);
    let newest = &stored(&host, &body).await[0];
    assert_eq!(newest.body_encoding, "base64");
    assert_eq!(newest.body, "/wD+");
}

#[tokio::test]
async fn signed_receivers_need_a_valid_hmac() {
    let host = TestHost::start(options()).await;
    let secret = "a-shared-secret-of-some-length";
    let reply = host
        .post_json("/webhook/new", json!({"name": "signed", "secret": secret}))
        .await;
    let signed: Created = reply.expect(201);
    // A field the host does not name would land among the provider's own.
    assert!(
        !signed.provider_fields.contains_key("secret"),
        "the secret is not echoed"
    );
    let url = format!("{}{}", host.url, receive_path(&signed));
    let payload = br#"{"action":"opened"}"#;
    let sign = |key: &str, body: &[u8]| {
        let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    };
    let send = |signature: Option<String>| {
        let mut request = host.http.post(&url).body(payload.to_vec());
        if let Some(signature) = signature {
            request = request.header("X-Hub-Signature-256", signature);
        }
        request.send()
    };
    assert_eq!(
        send(Some(sign(secret, payload)))
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    assert_eq!(send(None).await.unwrap().status().as_u16(), 401);
    assert_eq!(
        send(Some(sign("wrong-secret-wrong-secret", payload)))
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    assert_eq!(
        send(Some(sign(secret, b"other body")))
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    assert_eq!(stored(&host, &signed).await.len(), 1);

    // Unsigned receivers take anything; a short secret is refused at creation.
    let open = host.provision("webhook", "open").await;
    let plain = host
        .http
        .post(format!("{}{}", host.url, receive_path(&open)))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status().as_u16(), 200);
    let short = host
        .post_json("/webhook/new", json!({"name": "weak", "secret": "short"}))
        .await;
    assert_error(&short, 400, "invalid_secret");
}

/// Deliveries arriving together are stored in shared batches: each still gets its own id,
/// two receivers never see each other's requests, and each ring keeps exactly its newest N
/// even when one batch holds more than N deliveries for it.
#[tokio::test]
async fn a_concurrent_burst_is_stored_per_receiver_and_trimmed_to_n() {
    // One sender address, far faster than the per-address rate limit allows.
    let host = TestHost::start(HostOptions {
        extra: "rate_limit_per_minute = 0".into(),
        ..options()
    })
    .await;
    let first = host.provision("webhook", "burst-a").await;
    let second = host.provision("webhook", "burst-b").await;
    let deliveries = (0..400).map(|i| {
        let target = if i % 4 == 0 { &second } else { &first };
        let url = format!("{}{}", host.url, receive_path(target));
        let http = host.http.clone();
        async move {
            let reply = http
                .post(url)
                .json(&json!({"n": i}))
                .send()
                .await
                .expect("delivery sent");
            assert_eq!(reply.status().as_u16(), 200);
            let received: Received = reply.json().await.expect("an id per delivery");
            (i, received.id)
        }
    });
    let answered = futures::future::join_all(deliveries).await;
    let mut ids: Vec<i64> = answered.iter().map(|(_, id)| *id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 400, "every delivery has its own id");

    for (receiver, count, of_it) in [(&first, 100, 1), (&second, 100, 0)] {
        let requests = stored(&host, receiver).await;
        assert_eq!(requests.len(), count);
        // Exactly the receiver's newest deliveries (by id), and only its own.
        let mut newest: Vec<(i64, i64)> = answered
            .iter()
            .filter(|(i, _)| i64::from(i % 4 != 0) == of_it)
            .map(|(i, id)| (*id, i64::from(*i)))
            .collect();
        newest.sort_unstable_by(|a, b| b.cmp(a));
        newest.truncate(count);
        let kept: Vec<(i64, i64)> = requests
            .iter()
            .map(|r| {
                // The delivery's own body: free-form JSON.
                let body: Value = serde_json::from_str(&r.body).unwrap();
                (r.id, body["n"].as_i64().unwrap())
            })
            .collect();
        assert_eq!(kept, newest);
    }
}

#[tokio::test]
async fn stored_requests_survive_a_restart_and_end_with_the_resource() {
    let first = TestHost::start(options()).await;
    let body = first.provision("webhook", "durable").await;
    first
        .post_json(&receive_path(&body), json!({"kept": true}))
        .await;
    let metadata_db = first.metadata_db.clone();
    drop(first);

    let host = TestHost::start(HostOptions {
        metadata_db: Some(metadata_db),
        ..options()
    })
    .await;
    let requests = stored(&host, &body).await;
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].body, r#"{"kept":true}"#);

    let unknown = host
        .post_json(
            &format!("/webhook/receive/{}", uuid::Uuid::new_v4()),
            json!({}),
        )
        .await;
    assert_error(&unknown, 404, "resource_not_found");
    host.advance_clock(24 * 3600 + 60).await;
    let late = host.post_json(&receive_path(&body), json!({})).await;
    assert_error(&late, 410, "resource_expired");
    assert_eq!(host.reap().await.ended, 1);
    let token = body.token.to_string();
    let gone = host
        .get(&format!("/api/v1/webhooks/{token}/requests"))
        .await;
    assert_error(&gone, 410, "resource_expired");
    let mut db = host.metadata().await;
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_requests")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(left, 0, "the stored requests went with the resource");
}

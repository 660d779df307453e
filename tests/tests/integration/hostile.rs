//! The hostile-input campaign: every JSON operation of the OpenAPI document, with every
//! string field (and path parameter) replaced by values built to break parsers, SQL, shells
//! and memory, and with bodies of the wrong shape. Nothing may answer 5xx, every refusal is
//! the error envelope, the host stays up, and its memory stays bounded.

use instanode::api::schema::{ErrorBody, JsonRpcAnswer};
use instanode_tests::{HostOptions, ProviderSpec, TestHost};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// Strings that have broken someone's service.
fn hostile_strings() -> Vec<String> {
    vec![
        "naïve-数据库-🚀".into(),
        "\u{202e}evil\u{200b}".into(),
        "a\u{0}b".into(),
        "line\r\nInjected-Header: 1".into(),
        "\u{1b}[31mred".into(),
        "'; DROP TABLE resources; --".into(),
        "\" OR 1=1 --".into(),
        "$(rm -rf /)`id`".into(),
        "../../../../etc/passwd".into(),
        "%2e%2e%2f%00".into(),
        "${jndi:ldap://x}".into(),
        "{{7*7}}<script>alert(1)</script>".into(),
        " ".into(),
        String::new(),
        "x".repeat(1 << 20),
    ]
}

/// Bodies of the wrong shape, whatever the operation expects.
fn hostile_bodies() -> Vec<Vec<u8>> {
    let deep = "[".repeat(100_000) + &"]".repeat(100_000);
    let wide: Map<String, Value> = (0..20_000).map(|i| (format!("k{i}"), json!(i))).collect();
    vec![
        deep.into_bytes(),
        serde_json::to_vec(&Value::Object(wide)).unwrap(),
        b"[]".to_vec(),
        b"null".to_vec(),
        b"\"just a string\"".to_vec(),
        b"{\"name\": 1e999999}".to_vec(),
        b"{\"name\": \"\\ud800\"}".to_vec(),
        b"{\"name\": \"x\", \"name\": \"y\"}".to_vec(),
        b"{\"name\"".to_vec(),
        vec![0xff, 0xfe, 0x00, 0x7b],
    ]
}

/// Wrong types for a field.
fn hostile_values() -> Vec<Value> {
    vec![
        json!(null),
        json!(-1),
        json!(1.5e308),
        json!(true),
        json!([]),
        json!({"$ne": null}),
        json!([["nested"]]),
    ]
}

/// The JSON operations: (method, path, the body's property names).
fn json_operations(document: &Value) -> Vec<(String, String, Vec<String>)> {
    let mut found = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let schema = &operation["requestBody"]["content"]["application/json"]["schema"];
            if schema.is_null() {
                continue;
            }
            let properties = schema["properties"]
                .as_object()
                .map(|p| p.keys().cloned().collect())
                .unwrap_or_default();
            found.push((method.to_uppercase(), path.clone(), properties));
        }
    }
    found
}

/// `path` with every `{param}` replaced by `value` (percent-encoded, at most 4 KiB of it:
/// longer request lines are refused by the HTTP layer before any route sees them).
fn fill(path: &str, value: &str) -> String {
    let value: String = value.chars().take(4096).collect();
    let encoded: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
    path.split('/')
        .map(|seg| {
            if seg.starts_with('{') {
                encoded.as_str()
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn hostile_input_never_breaks_the_host() {
    let host = TestHost::start(HostOptions {
        providers: vec![
            ProviderSpec::postgres(&["db", "vector"]),
            ProviderSpec::redis(),
        ],
        ..HostOptions::default()
    })
    .await;
    let document = host.get("/openapi.json").await.body;
    let operations = json_operations(&document);
    assert!(operations.len() >= 6, "{operations:?}");
    let idle_rss = host.rss_kib();
    let mut attempts = 0;
    let mut problems = Vec::new();
    let mut check = |label: String, reply: Option<instanode_tests::Reply>| {
        attempts += 1;
        // The host may answer 413 and close while an oversized body is still being sent.
        let Some(reply) = reply else {
            return;
        };
        let status = reply.status.as_u16();
        // MCP answers in JSON-RPC's own error shape; everything else in the envelope.
        let envelope = if label.contains(" /mcp ") {
            JsonRpcAnswer::deserialize(&reply.body)
                .is_ok_and(|answer| answer.jsonrpc == "2.0" && answer.error.is_some())
        } else {
            ErrorBody::deserialize(&reply.body).is_ok()
        };
        if status >= 500 || (status >= 400 && !envelope) {
            problems.push(format!(
                "{label}: {status} {}",
                reply.body.to_string().chars().take(300).collect::<String>()
            ));
        }
    };
    // A fresh connection per request: the host closes one it refused a body on.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let send = |method: &str, path: &str, body: Vec<u8>| {
        let oversized = body.len() > 64 * 1024;
        let request = http
            .request(method.parse().unwrap(), format!("{}{path}", host.url))
            .header("content-type", "application/json")
            .header("x-forwarded-for", host.fresh_client())
            .body(body);
        async move {
            match request.send().await {
                Ok(response) => Some(instanode_tests::reply(response).await),
                Err(e) if oversized && e.is_request() => None,
                Err(e) => panic!("the host did not answer: {e:?}"),
            }
        }
    };
    // Only the kind route `/{kind}/new` is sent a real kind, so provisions happen too.
    let concrete = |path: &str, value: &str| {
        if path == "/{kind}/new" {
            "/db/new".to_string()
        } else {
            fill(path, value)
        }
    };
    for (method, path, properties) in &operations {
        for text in hostile_strings() {
            // Every property at once, and the path parameters, get the hostile string.
            let body: Map<String, Value> = properties
                .iter()
                .map(|p| (p.clone(), json!(text)))
                .collect();
            let target = concrete(path, &text);
            let reply = send(method, &target, serde_json::to_vec(&body).unwrap()).await;
            check(
                format!(
                    "{method} {path} with {:?}",
                    text.chars().take(20).collect::<String>()
                ),
                reply,
            );
        }
        for value in hostile_values() {
            let body: Map<String, Value> = properties
                .iter()
                .map(|p| (p.clone(), value.clone()))
                .collect();
            let reply = send(
                method,
                &concrete(path, "x"),
                serde_json::to_vec(&body).unwrap(),
            )
            .await;
            check(format!("{method} {path} with {value}"), reply);
        }
        for body in hostile_bodies() {
            let label = format!(
                "{method} {path} with body {:?}",
                String::from_utf8_lossy(&body[..body.len().min(20)])
            );
            let reply = send(method, &concrete(path, "x"), body).await;
            check(label, reply);
        }
    }
    assert!(
        problems.is_empty(),
        "{} of {attempts} attempts broke the envelope or the host:\n{}",
        problems.len(),
        problems.join("\n")
    );
    // Still serving, and memory did not grow with what it was sent (1 MB strings included).
    let health = host.get("/healthz").await;
    assert_eq!(health.status.as_u16(), 200);
    let after = host.rss_kib();
    println!("{attempts} hostile requests; host RSS {idle_rss} KiB before, {after} KiB after");
    assert!(
        after < idle_rss + 64 * 1024,
        "RSS grew from {idle_rss} to {after} KiB"
    );
}

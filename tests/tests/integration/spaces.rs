//! `POST /storage/new` and `POST /storage/{token}/presign` against a real S3 server that
//! verifies SigV4 signatures, checked with curl on the presigned URLs and boto3.

use std::process::Command;

use instanode::api::schema::{Created, Presigned, Resource};
use instanode::store::ResourceStatus;
use instanode_tests::{HostOptions, ProviderFields, ProviderSpec, TestHost, assert_error, python};
use serde_json::{Value, json};

async fn presign(host: &TestHost, token: uuid::Uuid, request: Value) -> instanode_tests::Reply {
    host.post_json(&format!("/storage/{token}/presign"), request)
        .await
}

async fn url_for(host: &TestHost, body: &Created, operation: &str, key: &str) -> String {
    let reply = presign(
        host,
        body.token,
        json!({"operation": operation, "key": key}),
    )
    .await;
    reply.expect::<Presigned>(200).url
}

/// Runs curl; (HTTP status, response body).
fn curl(method: &str, url: &str, upload: Option<&[u8]>) -> (u16, Vec<u8>) {
    let dir = std::env::temp_dir().join(format!("curl-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let out_file = dir.join("out");
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-o"])
        .arg(&out_file)
        .args(["-w", "%{http_code}"]);
    match method {
        "HEAD" => {
            cmd.arg("-I");
        }
        other => {
            cmd.args(["-X", other]);
        }
    }
    if let Some(bytes) = upload {
        let in_file = dir.join("in");
        std::fs::write(&in_file, bytes).unwrap();
        cmd.arg("--data-binary")
            .arg(format!("@{}", in_file.display()));
    }
    let out = cmd.arg(url).output().expect("curl runs");
    let status = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    let body = std::fs::read(&out_file).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    (status, body)
}

/// Objects under `prefix`, listed with boto3 and the bucket's own key.
fn objects_under(prefix: &str) -> usize {
    let out = python(
        r#"
import os, sys, boto3
s3 = boto3.client("s3", endpoint_url=os.environ["INSTANODE_TEST_S3_ENDPOINT"],
    aws_access_key_id=os.environ["INSTANODE_TEST_S3_ACCESS_KEY"],
    aws_secret_access_key=os.environ["INSTANODE_TEST_S3_SECRET_KEY"], region_name="us-east-1")
page = s3.list_objects_v2(Bucket=os.environ["INSTANODE_TEST_S3_BUCKET"], Prefix=sys.argv[1])
print(page.get("KeyCount", 0))
"#,
        &[prefix],
    );
    out.trim().parse().unwrap()
}

#[tokio::test]
async fn storage_new_is_broker_mode_and_presigned_urls_work() {
    let host = TestHost::start(HostOptions::only(ProviderSpec::spaces())).await;
    let body = host.provision("storage", "uploads").await;
    assert_eq!(body.field("mode"), "broker");
    assert_eq!(body.agent_action.as_deref(), Some("use_presign_endpoint"));
    let token = body.token;
    assert!(
        body.presign_url
            .as_deref()
            .unwrap()
            .ends_with(&format!("/storage/{token}/presign"))
    );
    let prefix = body.field("prefix");
    assert!(prefix.ends_with('/'));
    assert!(body.connection_url.as_str().ends_with(prefix));
    // Every field the type does not name lands in `provider_fields`: no key among them.
    assert!(
        !body.provider_fields.contains_key("access_key_id")
            && !body.provider_fields.contains_key("secret_access_key")
    );
    assert_eq!(body.limits.values["storage_mb"], 10);

    let content: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let reply = presign(
        &host,
        body.token,
        json!({"operation": "PUT", "key": "docs/data.bin", "expires_in": 120}),
    )
    .await;
    // `expires_at` is a string: what `Presigned` reads.
    let signed: Presigned = reply.expect(200);
    assert_eq!(signed.method, "PUT");
    assert_eq!(signed.key, "docs/data.bin");
    assert_eq!(signed.object_key, format!("{prefix}docs/data.bin"));
    let (status, _) = curl("PUT", &signed.url, Some(&content));
    assert_eq!(status, 200);

    let (status, read) = curl(
        "GET",
        &url_for(&host, &body, "GET", "docs/data.bin").await,
        None,
    );
    assert_eq!(status, 200);
    assert!(read == content, "downloaded bytes differ");
    let (status, _) = curl(
        "HEAD",
        &url_for(&host, &body, "HEAD", "docs/data.bin").await,
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(objects_under(prefix), 1);
}

#[tokio::test]
async fn presigned_urls_cannot_be_edited_and_bad_requests_are_refused() {
    let host = TestHost::start(HostOptions::only(ProviderSpec::spaces())).await;
    let a = host.provision("storage", "tenant-a").await;
    let b = host.provision("storage", "tenant-b").await;
    let (prefix_a, prefix_b) = (a.field("prefix"), b.field("prefix"));
    let put_a = url_for(&host, &a, "PUT", "x.txt").await;
    assert_eq!(curl("PUT", &put_a, Some(b"mine")).0, 200);

    // Re-pointed at B's prefix, the signature no longer matches.
    let repointed = put_a.replace(prefix_a, prefix_b);
    assert_ne!(repointed, put_a);
    assert_eq!(curl("PUT", &repointed, Some(b"intruder")).0, 403);
    let get_a = url_for(&host, &a, "GET", "x.txt").await;
    assert_eq!(curl("GET", &get_a.replace(prefix_a, prefix_b), None).0, 403);
    // A tampered signature, a raised expiry, another method: refused.
    let sig_at = get_a.find("X-Amz-Signature=").unwrap() + "X-Amz-Signature=".len();
    let mut tampered = get_a.clone().into_bytes();
    tampered[sig_at] = if tampered[sig_at] == b'0' { b'1' } else { b'0' };
    assert_eq!(
        curl("GET", &String::from_utf8(tampered).unwrap(), None).0,
        403
    );
    assert_eq!(
        curl(
            "GET",
            &get_a.replace("X-Amz-Expires=600", "X-Amz-Expires=3600"),
            None
        )
        .0,
        403
    );
    assert_eq!(curl("DELETE", &get_a, None).0, 403);
    // Expired.
    let short = presign(
        &host,
        a.token,
        json!({"operation": "GET", "key": "x.txt", "expires_in": 1}),
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(curl("GET", &short.json::<Presigned>().url, None).0, 403);
    // B's objects list and A's object is intact.
    assert_eq!(objects_under(prefix_b), 0);
    assert_eq!(curl("GET", &get_a, None).1, b"mine");

    // The host refuses bad keys before signing anything.
    for key in [
        json!(""),
        json!("/abs"),
        json!("../b/x"),
        json!("a/../../x"),
        json!("a\u{1}b"),
        json!("x".repeat(901)),
        json!(null),
    ] {
        let reply = presign(&host, b.token, json!({"operation": "PUT", "key": key})).await;
        assert_error(&reply, 400, "invalid_key");
    }
    for operation in [json!("DELETE"), json!("put"), json!(null)] {
        let reply = presign(&host, b.token, json!({"operation": operation, "key": "k"})).await;
        assert_error(&reply, 400, "invalid_operation");
    }
}

#[tokio::test]
async fn presign_checks_expiry_values_tokens_and_its_rate() {
    let host = TestHost::start(HostOptions::only(ProviderSpec::spaces())).await;
    let body = host.provision("storage", "limits").await;
    for expires_in in [json!(0), json!(3601), json!("60"), json!(1.5)] {
        let reply = presign(
            &host,
            body.token,
            json!({"operation": "GET", "key": "k", "expires_in": expires_in}),
        )
        .await;
        assert_error(&reply, 400, "invalid_expires_in");
    }
    let unknown = uuid::Uuid::new_v4();
    assert_error(
        &presign(&host, unknown, json!({"operation": "GET", "key": "k"})).await,
        404,
        "resource_not_found",
    );
    // Ten a minute per resource (four were spent above), for distinct requests.
    for i in 0..6 {
        let request = json!({"operation": "GET", "key": format!("k{i}")});
        presign(&host, body.token, request)
            .await
            .expect::<Presigned>(200);
    }
    assert_error(
        &presign(&host, body.token, json!({"operation": "GET", "key": "k6"})).await,
        429,
        "rate_limited",
    );
    // The holder's identical retry within two minutes gets the first URL again, spending
    // nothing.
    let first = presign(&host, body.token, json!({"operation": "GET", "key": "k0"})).await;
    assert_eq!(first.status.as_u16(), 200, "{}", first.body);
    assert_eq!(
        first
            .headers
            .get("x-idempotent-replay")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
}

#[tokio::test]
async fn over_quota_uploads_stop_and_expiry_empties_the_prefix() {
    let host = TestHost::start(HostOptions::only(ProviderSpec::spaces())).await;
    let body = host.provision("storage", "full").await;
    let prefix = body.field("prefix").to_string();
    let mib = vec![b'z'; 1024 * 1024];
    for i in 0..9 {
        let (status, _) = curl(
            "PUT",
            &url_for(&host, &body, "PUT", &format!("part-{i}")).await,
            Some(&mib),
        );
        assert_eq!(status, 200);
    }
    // Tokens refill at one per six seconds; wait for two more.
    tokio::time::sleep(std::time::Duration::from_secs(12)).await;
    let put = url_for(&host, &body, "PUT", "part-9").await;
    let get = url_for(&host, &body, "GET", "part-0").await;
    let big = vec![b'z'; 2 * 1024 * 1024];
    assert_eq!(curl("PUT", &put, Some(&big)).0, 200);
    host.meter().await;

    let token = body.token.to_string();
    let state = host.get(&format!("/api/v1/resources/{token}")).await;
    assert_eq!(
        state.json::<Resource>().status,
        ResourceStatus::Suspended,
        "{}",
        state.body
    );
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    let refused = presign(
        &host,
        body.token,
        json!({"operation": "PUT", "key": "more"}),
    )
    .await;
    assert_error(&refused, 402, "storage_limit_exceeded");
    assert_eq!(curl("GET", &get, None).0, 200, "downloads still work");

    host.advance_clock(24 * 3600 + 60).await;
    assert_eq!(host.reap().await.ended, 1);
    assert_eq!(objects_under(&prefix), 0, "nothing left under the prefix");
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    let gone = presign(
        &host,
        body.token,
        json!({"operation": "GET", "key": "part-0"}),
    )
    .await;
    assert_error(&gone, 410, "resource_expired");
}

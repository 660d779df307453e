//! `POST /queue/new` against a real NATS server in operator mode, checked with async-nats
//! and the Python `nats-py` client: one account per resource, limits in the account JWT.

use std::time::Duration;

use async_nats::Client;
use async_nats::jetstream::{self, stream};
use futures::StreamExt;
use instanode::api::schema::{Created, Readiness, Resource, ResourceDeleted};
use instanode_tests::nats::TestNats;
use instanode_tests::{HostOptions, ProviderFields, ProviderSpec, TestHost, python};
use serde_json::json;

fn creds(body: &Created) -> &str {
    body.field("credentials.creds_file")
}

fn account(body: &Created) -> String {
    body.field("credentials.key_id").to_string()
}

/// Connects with `creds` and proves the login with a round trip; the error otherwise.
async fn try_connect(url: &str, creds: &str) -> Result<Client, String> {
    instanode_tests::nats::login(url, creds).await
}

async fn connect(body: &Created) -> Client {
    try_connect(&body.connection_url, creds(body))
        .await
        .expect("tenant connects with its credentials")
}

fn stream_config(name: &str, subjects: &str) -> stream::Config {
    stream::Config {
        name: name.into(),
        subjects: vec![subjects.into()],
        storage: stream::StorageType::File,
        ..Default::default()
    }
}

fn nats_server(host: &TestHost) -> &TestNats {
    host.nats.as_ref().expect("the host's NATS server")
}

#[tokio::test]
async fn queue_new_returns_an_isolated_account_that_works() {
    let host = TestHost::start(HostOptions::only(ProviderSpec::nats())).await;
    let body = host.provision("queue", "events").await;
    let url = body.connection_url.as_str();
    assert_eq!(url, nats_server(&host).ports.url());
    assert_eq!(body.field("auth_mode"), "isolated");
    assert_eq!(body.field("credentials.auth_mode"), "isolated");
    assert!(body.field("subject_prefix").ends_with('.'));
    let seed = body.field("credentials.nats_nkey");
    assert!(seed.starts_with("SU"), "a user seed");
    let jwt = body.field("credentials.nats_jwt");
    assert!(creds(&body).contains(jwt) && creds(&body).contains(seed));
    assert_eq!(body.limits.values["storage_mb"], 64);
    assert!(
        nats_server(&host)
            .stored_accounts()
            .contains(&account(&body))
    );

    // Core pub/sub.
    let client = connect(&body).await;
    let mut sub = client.subscribe("orders.>").await.unwrap();
    client.publish("orders.1", "hello".into()).await.unwrap();
    let message = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .expect("message arrives")
        .unwrap();
    assert_eq!(&message.payload[..], b"hello");

    // JetStream: a stream of its own, acknowledged publishes.
    let js = jetstream::new(client.clone());
    js.create_stream(stream_config("ORDERS", "orders.>"))
        .await
        .expect("stream created");
    let ack = js
        .publish("orders.2", "stored".into())
        .await
        .unwrap()
        .await
        .expect("publish acknowledged");
    assert_eq!(ack.stream, "ORDERS");

    // The Python client, from the creds file alone.
    let path = host.dir.join("queue.creds");
    std::fs::write(&path, creds(&body)).unwrap();
    let out = python(
        r#"
import asyncio, sys, nats
async def main():
    nc = await nats.connect(sys.argv[1], user_credentials=sys.argv[2])
    js = nc.jetstream()
    ack = await js.publish("orders.py", b"from python")
    info = await js.stream_info("ORDERS")
    print(ack.stream, info.state.messages)
    await nc.close()
asyncio.run(main())
"#,
        &[url, path.to_str().unwrap()],
    );
    assert_eq!(out.trim(), "ORDERS 2");
}

#[tokio::test]
async fn tenants_cannot_reach_each_other() {
    let host = TestHost::start(HostOptions::only(ProviderSpec::nats())).await;
    let a = host.provision("queue", "tenant-a").await;
    let b = host.provision("queue", "tenant-b").await;
    assert_ne!(account(&a), account(&b));
    let client_a = connect(&a).await;
    let client_b = connect(&b).await;

    // B listens to everything it can; A's traffic reaches A's subscriber only.
    let mut everything_b = client_b.subscribe(">").await.unwrap();
    let mut own_a = client_a.subscribe("secret.>").await.unwrap();
    client_b.flush().await.unwrap();
    let js_a = jetstream::new(client_a.clone());
    js_a.create_stream(stream_config("PRIVATE", "secret.>"))
        .await
        .unwrap();
    js_a.publish("secret.1", "for A only".into())
        .await
        .unwrap()
        .await
        .unwrap();
    let seen_by_a = tokio::time::timeout(Duration::from_secs(5), own_a.next()).await;
    assert!(seen_by_a.is_ok(), "A receives its own message");
    let seen_by_b = tokio::time::timeout(Duration::from_millis(500), everything_b.next()).await;
    assert!(seen_by_b.is_err(), "B received {:?}", seen_by_b.unwrap());

    // B's JetStream shows none of A's streams, and cannot open or delete them.
    let js_b = jetstream::new(client_b.clone());
    let names: Vec<String> = js_b
        .stream_names()
        .map(|n| n.unwrap())
        .collect::<Vec<_>>()
        .await;
    assert!(names.is_empty(), "B sees streams {names:?}");
    assert!(js_b.get_stream("PRIVATE").await.is_err());
    assert!(js_b.delete_stream("PRIVATE").await.is_err());
    assert!(
        js_a.get_stream("PRIVATE").await.is_ok(),
        "A's stream survives"
    );

    // B's key cannot log in as A's user (A's JWT, B's seed), nor the reverse.
    let url = a.connection_url.as_str();
    let swap = |jwt_from: &Created, seed_from: &Created| {
        creds(seed_from).replace(
            seed_from.field("credentials.nats_jwt"),
            jwt_from.field("credentials.nats_jwt"),
        )
    };
    assert!(try_connect(url, &swap(&a, &b)).await.is_err());
    assert!(try_connect(url, &swap(&b, &a)).await.is_err());
}

#[tokio::test]
async fn the_account_enforces_storage_stream_and_connection_limits() {
    let host = TestHost::start(HostOptions::only(ProviderSpec::nats())).await;
    let body = host.provision("queue", "limits").await;
    let client = connect(&body).await;
    let js = jetstream::new(client.clone());

    // A stream declaring more than the 64 MB allowance is refused.
    let too_big = stream::Config {
        max_bytes: 65 * 1024 * 1024,
        ..stream_config("BIG", "big.>")
    };
    let refused = js
        .create_stream(too_big)
        .await
        .expect_err("over the allowance");
    println!("oversized stream: {refused}");

    // Memory streams are not part of the tier.
    let memory = stream::Config {
        storage: stream::StorageType::Memory,
        ..stream_config("MEM", "mem.>")
    };
    assert!(js.create_stream(memory).await.is_err());

    // Publishing past 64 MB stored is refused.
    js.create_stream(stream_config("FILL", "fill.>"))
        .await
        .unwrap();
    let chunk = bytes_of(1000 * 1024);
    let mut stored = 0usize;
    let mut refusal = None;
    for i in 0..80 {
        match js
            .publish(format!("fill.{i}"), chunk.clone())
            .await
            .unwrap()
            .await
        {
            Ok(_) => stored += chunk.len(),
            Err(e) => {
                refusal = Some(e.to_string());
                break;
            }
        }
    }
    let refusal = refusal.expect("a publish past 64 MB is refused");
    println!("refused after {stored} bytes: {refusal}");
    assert!(
        stored <= 64 * 1024 * 1024 && stored > 60 * 1024 * 1024,
        "{stored}"
    );

    // The tier's stream count (1 for anonymous) holds too.
    assert!(
        js.create_stream(stream_config("SECOND", "second.>"))
            .await
            .is_err()
    );

    // Five connections in all; the sixth is refused.
    let url = body.connection_url.as_str();
    let mut open = vec![client];
    for _ in 1..5 {
        open.push(
            try_connect(url, creds(&body))
                .await
                .expect("within the limit"),
        );
    }
    let sixth = try_connect(url, creds(&body)).await;
    assert!(sixth.is_err(), "a sixth connection was accepted");
}

fn bytes_of(len: usize) -> bytes::Bytes {
    bytes::Bytes::from(vec![b'x'; len])
}

/// Waits until `client` has lost its connection (the server closed it).
async fn dropped(client: &Client) -> bool {
    for _ in 0..100 {
        if client.connection_state() != async_nats::connection::State::Connected {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn delete_and_expiry_remove_the_account_its_streams_and_its_connections() {
    let mut host = TestHost::start(HostOptions::only(ProviderSpec::nats())).await;
    for (name, by_ttl) in [("deleted", false), ("expired", true)] {
        let body = host.provision("queue", name).await;
        let client = connect(&body).await;
        let js = jetstream::new(client.clone());
        js.create_stream(stream_config("KEEP", "keep.>"))
            .await
            .unwrap();
        js.publish("keep.1", bytes_of(4096))
            .await
            .unwrap()
            .await
            .unwrap();
        let acc = account(&body);
        assert!(
            nats_server(&host)
                .accounts_with_jetstream_data()
                .contains(&acc)
        );

        if by_ttl {
            host.advance_clock(24 * 3600 + 60).await;
            assert_eq!(host.reap().await.ended, 1);
        } else {
            let token = body.token.to_string();
            let reply = host.delete(&format!("/api/v1/resources/{token}")).await;
            reply.expect::<ResourceDeleted>(200);
        }
        assert!(
            dropped(&client).await,
            "{name}: the open connection was dropped"
        );
        let again = try_connect(&body.connection_url, creds(&body)).await;
        assert!(again.is_err(), "{name}: new connections are refused");
        let server = nats_server(&host);
        assert!(
            !server.stored_accounts().contains(&acc),
            "{name}: account gone"
        );
        assert!(
            !server.accounts_with_jetstream_data().contains(&acc),
            "{name}: its JetStream data is gone"
        );
    }

    // The server comes back healthy: no orphaned JetStream data left behind.
    let server = host.nats.as_mut().unwrap();
    server.restart().await.expect("NATS restarts");
    assert!(server.healthy().await);
}

#[tokio::test]
async fn accounts_survive_host_and_server_restarts() {
    let mut first = TestHost::start(HostOptions::only(ProviderSpec::nats())).await;
    let before = first.provision("queue", "before").await;
    let mut server = first.nats.take().expect("the host's NATS server");
    let metadata_db = first.metadata_db.clone();
    drop(first);

    // The NATS server restarts too: its resolver kept the account on disk.
    server.restart().await.expect("NATS restarts");
    let client = connect(&before).await;
    jetstream::new(client)
        .create_stream(stream_config("AFTER", "after.>"))
        .await
        .expect("the account's JetStream works after the restarts");

    // A new host process on the same metadata signs with the same operator.
    let second = TestHost::start(HostOptions {
        providers: vec![ProviderSpec::nats_on(server.ports)],
        metadata_db: Some(metadata_db),
        ..HostOptions::default()
    })
    .await;
    let after = second.provision("queue", "after").await;
    connect(&after).await;
    let stored = server.stored_accounts();
    assert!(stored.contains(&account(&before)) && stored.contains(&account(&after)));
}

#[tokio::test]
async fn usage_reports_the_accounts_stored_bytes() {
    let host = TestHost::start(HostOptions::only(ProviderSpec::nats())).await;
    let body = host.provision("queue", "metered").await;
    let client = connect(&body).await;
    let js = jetstream::new(client.clone());
    js.create_stream(stream_config("M", "m.>")).await.unwrap();
    for i in 0..10 {
        js.publish(format!("m.{i}"), bytes_of(100 * 1024))
            .await
            .unwrap()
            .await
            .unwrap();
    }
    host.meter().await;
    let token = body.token.to_string();
    let reply = host.get(&format!("/api/v1/resources/{token}")).await;
    println!("{}", reply.body);
    // The kind's own measurements: free-form.
    let usage = reply.expect::<Resource>(200).usage.expect("usage measured");
    let stored = usage["storage_bytes"].as_u64().expect("usage measured");
    assert!(stored >= 1000 * 1024, "{stored}");
    assert_eq!(usage["connections"], 1);
    assert_eq!(usage["streams"], 1);
    assert_eq!(usage["messages"], 10);
}

#[tokio::test]
async fn a_server_out_of_jetstream_capacity_fails_the_provision_cleanly() {
    // Room for two 64 MiB reservations, not three.
    let spec = instanode_tests::nats::NatsSpec {
        max_file_store_mb: 160,
        ..instanode_tests::nats::NatsSpec::free()
    };
    let host = TestHost::start(HostOptions {
        providers: vec![ProviderSpec::nats_on(spec)],
        ..HostOptions::default()
    })
    .await;
    host.provision("queue", "one").await;
    host.provision("queue", "two").await;
    let stored = nats_server(&host).stored_accounts();
    let reply = host
        .post_json("/queue/new", json!({ "name": "three" }))
        .await;
    instanode_tests::assert_error(&reply, 503, "provision_failed");
    println!("{}", reply.body);
    // The refused account was removed again: only the working ones (and the system
    // account) stay.
    assert_eq!(nats_server(&host).stored_accounts(), stored);
}

#[tokio::test]
async fn a_nats_outage_fails_provisions_cleanly_and_the_host_recovers() {
    let mut host = TestHost::start(HostOptions::only(ProviderSpec::nats())).await;
    host.provision("queue", "before").await;
    host.nats.as_mut().unwrap().stop().await;

    let reply = host
        .post_json("/queue/new", json!({ "name": "during" }))
        .await;
    instanode_tests::assert_error(&reply, 503, "provision_failed");
    let ready: Readiness = host.get("/readyz").await.json();
    assert_eq!(ready.checks["provider:nats"].status, "failed", "{ready:?}");

    host.nats.as_mut().unwrap().restart().await.unwrap();
    // The host's system connection comes back by itself.
    let mut recovered = false;
    for _ in 0..50 {
        let reply = host
            .post_json("/queue/new", json!({ "name": "after" }))
            .await;
        if reply.status.as_u16() == 201 {
            connect(&reply.json()).await;
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        recovered,
        "provisioning works again after the server is back"
    );
}

//! `POST /cache/new` against a real Redis server, checked with redis-rs and `redis-cli`.

use instanode::api::schema::{Created, Resource, ResourceDeleted};
use instanode::store::ResourceStatus;
use instanode_tests::{
    HostOptions, ProviderFields, ProviderSpec, TestHost, assert_error, redis_admin,
};
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;

async fn connect(body: &Created) -> MultiplexedConnection {
    redis::Client::open(body.connection_url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("tenant connects with its URL")
}

fn prefix(body: &Created) -> String {
    body.field("key_prefix").to_string()
}

/// The error code (`NOPERM`, ...) of a command that must fail.
async fn refused(conn: &mut MultiplexedConnection, args: &[&str]) -> String {
    let mut cmd = redis::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    let result: redis::RedisResult<redis::Value> = cmd.query_async(conn).await;
    match result {
        Err(e) => e.code().unwrap_or("?").to_string(),
        Ok(v) => panic!("{args:?} should be refused, got {v:?}"),
    }
}

#[tokio::test]
async fn cache_new_returns_a_working_namespace() {
    let host = TestHost::start(HostOptions::only(ProviderSpec::redis())).await;
    let body = host.provision("cache", "sessions").await;
    let url = body.connection_url.as_str();
    let user = format!("t_{}", body.id.to_string().replace('-', ""));
    assert!(url.starts_with(&format!("redis://{user}:")), "{url}");
    assert!(url.ends_with("/0"), "{url}");
    assert_eq!(body.limits.values["memory_mb"], 5);

    let mut conn = connect(&body).await;
    let key = format!("{}greeting", prefix(&body));
    let () = conn.set(&key, "hello").await.unwrap();
    let read: String = conn.get(&key).await.unwrap();
    assert_eq!(read, "hello");

    // The plain CLI works with the same URL.
    let out = std::process::Command::new("redis-cli")
        .args(["-u", url, "--no-auth-warning", "GET", &key])
        .output()
        .expect("redis-cli runs");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "hello");
}

#[tokio::test]
async fn tenants_cannot_reach_each_other_or_the_server() {
    let host = TestHost::start(HostOptions::only(ProviderSpec::redis())).await;
    let (a, b) = (
        host.provision("cache", "a").await,
        host.provision("cache", "b").await,
    );
    let (mut ca, mut cb) = (connect(&a).await, connect(&b).await);
    let b_key = format!("{}secret", prefix(&b));
    let b_channel = format!("{}events", prefix(&b));
    let () = cb.set(&b_key, "b-data").await.unwrap();

    // B's keys: no read, write, delete, rename, inspection.
    for args in [
        vec!["GET", &b_key],
        vec!["SET", &b_key, "x"],
        vec!["DEL", &b_key],
        vec!["EXISTS", &b_key],
        vec!["TYPE", &b_key],
        vec!["DUMP", &b_key],
        vec!["PUBLISH", &b_channel, "x"],
    ] {
        assert_eq!(refused(&mut ca, &args).await, "NOPERM", "{args:?}");
    }
    let copy_to_own = format!("{}copy", prefix(&a));
    assert_eq!(
        refused(&mut ca, &["COPY", &b_key, &copy_to_own]).await,
        "NOPERM"
    );
    // Nothing that lists or counts the keyspace, nothing server-wide, no way to escalate.
    for args in [
        vec!["KEYS", "*"],
        vec!["SCAN", "0"],
        vec!["RANDOMKEY"],
        vec!["DBSIZE"],
        vec!["FLUSHALL"],
        vec!["FLUSHDB"],
        vec!["CONFIG", "GET", "*"],
        vec!["INFO"],
        vec!["CLIENT", "LIST"],
        vec!["PUBSUB", "CHANNELS"],
        vec!["SELECT", "1"],
        vec!["EVAL", "return 1", "0"],
        vec!["ACL", "SETUSER", "x", "on", "+@all"],
        vec!["ACL", "LIST"],
        vec!["SHUTDOWN"],
        vec!["MONITOR"],
    ] {
        assert_eq!(refused(&mut ca, &args).await, "NOPERM", "{args:?}");
    }
    // DEBUG is off on the server altogether (ERR rather than NOPERM).
    refused(&mut ca, &["DEBUG", "SLEEP", "0"]).await;
    // B is untouched; and A's own keys work.
    let still: String = cb.get(&b_key).await.unwrap();
    assert_eq!(still, "b-data");
    let own = format!("{}mine", prefix(&a));
    let () = ca.set(&own, 1).await.unwrap();

    // Without B's password, B's user stays closed.
    let url = b.connection_url.as_str();
    let (credentials, server) = url["redis://".len()..].split_once('@').unwrap();
    let user = credentials.split(':').next().unwrap();
    let forged = format!("redis://{user}:wrongpassword@{server}");
    let attempt = redis::Client::open(forged)
        .unwrap()
        .get_multiplexed_async_connection()
        .await;
    assert!(attempt.is_err(), "a wrong password is refused");
}

#[tokio::test]
async fn over_its_memory_limit_a_cache_takes_deletes_but_no_writes() {
    let host = TestHost::start(HostOptions::only(ProviderSpec::redis())).await;
    let body = host.provision("cache", "grows").await;
    let token = body.token.to_string();
    let mut conn = connect(&body).await;
    let p = prefix(&body);
    // 6 MB of values past the 5 MB anonymous limit.
    let value = "v".repeat(100 * 1024);
    for i in 0..60 {
        let () = conn.set(format!("{p}blob{i}"), &value).await.unwrap();
    }
    let report = host.meter().await;
    assert_eq!(report.suspended, 1, "{report:?}");
    let view = host.get(&format!("/api/v1/resources/{token}")).await;
    let resource: Resource = view.json();
    assert_eq!(resource.status, ResourceStatus::Suspended, "{}", view.body);
    assert!(resource.storage_bytes.unwrap() > 5 * 1024 * 1024);

    assert_eq!(
        refused(&mut conn, &["SET", &format!("{p}more"), "x"]).await,
        "NOPERM"
    );
    let read: String = conn
        .get(format!("{p}blob0"))
        .await
        .expect("reads still work");
    assert_eq!(read.len(), value.len());
    for i in 0..60 {
        let () = conn
            .del(format!("{p}blob{i}"))
            .await
            .expect("deletes still work");
    }
    let report = host.meter().await;
    assert_eq!(report.resumed, 1, "{report:?}");
    let () = conn
        .set(format!("{p}more"), "x")
        .await
        .expect("writes work again");
    // Resuming restores the tenant rule, not blanket write access.
    assert_eq!(refused(&mut conn, &["FLUSHALL"]).await, "NOPERM");
}

#[tokio::test]
async fn connections_beyond_the_tier_are_closed() {
    let host = TestHost::start(HostOptions::only(ProviderSpec::redis())).await;
    let body = host.provision("cache", "busy").await;
    let mut conns = Vec::new();
    for _ in 0..4 {
        let mut conn = connect(&body).await;
        let _: String = redis::cmd("PING").query_async(&mut conn).await.unwrap();
        conns.push(conn);
    }
    let report = host.meter().await;
    assert_eq!(report.measured, 1, "{report:?}");
    let user = format!("t_{}", body.id.to_string().replace('-', ""));
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut redis_admin().await)
        .await
        .unwrap();
    let open = list
        .lines()
        .filter(|l| l.split(' ').any(|f| f == format!("user={user}")))
        .count();
    assert_eq!(open, 2, "the anonymous tier keeps 2 connections");
}

#[tokio::test]
async fn delete_and_expiry_remove_the_user_and_its_keys() {
    let host = TestHost::start(HostOptions::only(ProviderSpec::redis())).await;
    let mut admin = redis_admin().await;
    for (name, by_ttl) in [("deleted", false), ("expired", true)] {
        let body = host.provision("cache", name).await;
        let mut conn = connect(&body).await;
        let p = prefix(&body);
        for i in 0..1200 {
            let () = conn.set(format!("{p}k{i}"), i).await.unwrap();
        }
        if by_ttl {
            host.advance_clock(24 * 3600 + 60).await;
            assert_eq!(host.reap().await.ended, 1);
        } else {
            let token = body.token.to_string();
            let reply = host.delete(&format!("/api/v1/resources/{token}")).await;
            reply.expect::<ResourceDeleted>(200);
        }
        let user = format!("t_{}", body.id.to_string().replace('-', ""));
        let acl: redis::Value = redis::cmd("ACL")
            .arg("GETUSER")
            .arg(&user)
            .query_async(&mut admin)
            .await
            .unwrap();
        assert_eq!(acl, redis::Value::Nil, "user {user} is gone");
        let left: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{p}*"))
            .query_async(&mut admin)
            .await
            .unwrap();
        assert!(left.is_empty(), "{} keys left", left.len());
        let ping: redis::RedisResult<String> = redis::cmd("PING").query_async(&mut conn).await;
        assert!(ping.is_err(), "the open connection was closed");
    }
    // A second removal is harmless.
    let reply = host
        .delete(&format!("/api/v1/resources/{}", uuid::Uuid::new_v4()))
        .await;
    assert_error(&reply, 404, "resource_not_found");
}

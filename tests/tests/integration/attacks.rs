//! Attacks on the tenant boundary, each run as a hostile tenant would run it: with nothing
//! but the credentials `POST /<kind>/new` hands out and the backend's own client.
//!
//! - Postgres: functions that shadow the ones privileged sessions call, and `search_path`,
//!   `role` or read-only settings on the tenant's database and role, across every
//!   privileged path (usage, suspend, resume, rotation, deprovision);
//! - Redis: invalidation pushes in `BCAST` tracking mode, keyless commands that report the
//!   server, a 512 MB `SETRANGE`, connections past the tier;
//! - every provider that rotates: the old credentials and the sessions opened with them.

use std::time::Duration;

use instanode::api::schema::{
    Created, QuotaFailures, Readiness, ResourceCredentials, ResourceDeleted,
};
use instanode_tests::{
    ADMIN_BEARER, HostOptions, ProviderFields, ProviderSpec, TestHost, redis_admin, superuser,
};
use sqlx::{Connection, PgConnection};

/// A resource of `kind` owned by the signed-in team behind `bearer` (rotation needs an owner).
async fn rotate(host: &TestHost, resource: &Created, bearer: &str) -> ResourceCredentials {
    let token = resource.token;
    host.post(
        &format!("/api/v1/resources/{token}/rotate-credentials"),
        None,
        vec![],
        &[("authorization", bearer)],
    )
    .await
    .expect(200)
}

/// (user, database) of a `postgres://user:password@host:port/database` URL.
fn pg_names(url: &str) -> (String, String) {
    let rest = url.split_once("://").unwrap().1;
    let (credentials, server) = rest.rsplit_once('@').unwrap();
    let user = credentials.split_once(':').unwrap().0.to_string();
    (user, server.rsplit('/').next().unwrap().to_string())
}

/// ~15 MB of rows that do not compress: past the 10 MB of the anonymous and free tiers.
async fn grow_past_ten_megabytes(tenant: &mut PgConnection) {
    sqlx::raw_sql(
        "CREATE TABLE blobs (id int, body text);
         INSERT INTO blobs SELECT g, md5(g::text) || md5((g * 7)::text) || md5((g * 13)::text)
           FROM generate_series(1, 110000) g;",
    )
    .execute(tenant)
    .await
    .unwrap();
}

/// What the tenant plants: functions in its `public` schema that shadow the ones a
/// privileged session might call (`format`, `starts_with`, ...), each of which, when run
/// by a superuser, makes the tenant a superuser and leaves `evidence` behind (a role, so it
/// outlives the database); and settings that put `public` first for every role.
fn trap_sql(user: &str, database: &str, evidence: &str) -> String {
    format!(
        r#"
CREATE FUNCTION public.trap() RETURNS void LANGUAGE plpgsql AS $f$
BEGIN
  IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user)
     AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = '{evidence}') THEN
    EXECUTE 'CREATE ROLE {evidence} SUPERUSER NOLOGIN';
    EXECUTE 'ALTER ROLE {user} SUPERUSER';
  END IF;
END $f$;
CREATE FUNCTION public.format(text, name) RETURNS text LANGUAGE plpgsql AS $f$
BEGIN PERFORM public.trap(); RETURN pg_catalog.format($1, $2); END $f$;
CREATE FUNCTION public.format(text, text) RETURNS text LANGUAGE plpgsql AS $f$
BEGIN PERFORM public.trap(); RETURN pg_catalog.format($1, $2); END $f$;
CREATE FUNCTION public.starts_with(text, text) RETURNS boolean LANGUAGE plpgsql AS $f$
BEGIN PERFORM public.trap(); RETURN pg_catalog.starts_with($1, $2); END $f$;
CREATE FUNCTION public.pg_terminate_backend(integer) RETURNS boolean LANGUAGE plpgsql AS $f$
BEGIN PERFORM public.trap(); RETURN pg_catalog.pg_terminate_backend($1); END $f$;
CREATE FUNCTION public.current_setting(text) RETURNS text LANGUAGE plpgsql AS $f$
BEGIN PERFORM public.trap(); RETURN pg_catalog.current_setting($1); END $f$;
ALTER DATABASE "{database}" SET search_path = public, pg_catalog;
ALTER ROLE "{user}" SET search_path = public, pg_catalog;
"#
    )
}

/// Fails when a privileged `path` ran the tenant's trap.
async fn assert_not_escalated(user: &str, evidence: &str, path: &str) {
    let mut admin = superuser("postgres").await;
    let (superuser, trapped): (bool, bool) = sqlx::query_as(
        "SELECT coalesce((SELECT rolsuper FROM pg_roles WHERE rolname = $1), false),
                EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $2)",
    )
    .bind(user)
    .bind(evidence)
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert!(
        !superuser && !trapped,
        "{path}: the tenant's function ran as superuser (tenant superuser: {superuser}, \
         evidence role: {trapped})"
    );
}

#[tokio::test]
async fn postgres_privileged_paths_never_run_the_tenants_functions() {
    let host = TestHost::start(HostOptions::default()).await;
    let bearer = host.new_account("attacker").await.bearer;
    let db = host
        .provision_with("db", "trap", &[("authorization", &*bearer)])
        .await;
    let url = db.connection_url.as_str();
    let (user, database) = pg_names(url);
    let evidence = format!("pwned_{}", uuid::Uuid::new_v4().simple());
    let mut tenant = PgConnection::connect(url).await.unwrap();
    sqlx::raw_sql(&trap_sql(&user, &database, &evidence))
        .execute(&mut tenant)
        .await
        .unwrap();

    let report = host.meter().await;
    assert_eq!(report.failed, 0, "usage: {report:?}");
    assert_not_escalated(&user, &evidence, "usage").await;

    grow_past_ten_megabytes(&mut tenant).await;
    let report = host.meter().await;
    assert_eq!(report.suspended, 1, "suspend: {report:?}");
    assert_not_escalated(&user, &evidence, "suspend").await;

    sqlx::query("TRUNCATE blobs")
        .execute(&mut tenant)
        .await
        .unwrap();
    let report = host.meter().await;
    assert_eq!(report.resumed, 1, "resume: {report:?}");
    assert_not_escalated(&user, &evidence, "resume").await;

    let rotated = rotate(&host, &db, &bearer).await;
    assert_not_escalated(&user, &evidence, "rotation").await;
    // The session opened with the old password ends with the rotation, and the old
    // password no longer logs in.
    assert!(
        sqlx::query("SELECT 1").execute(&mut tenant).await.is_err(),
        "a session opened with the old password outlived the rotation"
    );
    assert!(
        PgConnection::connect(url).await.is_err(),
        "the old password still logs in"
    );
    let new_url = rotated.connection_url.as_str();
    let mut tenant = PgConnection::connect(new_url).await.unwrap();
    sqlx::query("INSERT INTO blobs VALUES (1, 'after rotation')")
        .execute(&mut tenant)
        .await
        .expect("the new password writes to the same data");
    tenant.close().await.unwrap();

    let token = db.token.to_string();
    let deleted = host
        .delete_with(
            &format!("/api/v1/resources/{token}"),
            &[("authorization", &bearer)],
        )
        .await;
    deleted.expect::<ResourceDeleted>(200);
    assert_not_escalated(&user, &evidence, "deprovision").await;
}

#[tokio::test]
async fn postgres_database_settings_cannot_stop_a_suspension() {
    let host = TestHost::start(HostOptions::default()).await;
    let db = host.provision("db", "read-only-escape").await;
    let url = db.connection_url.as_str();
    let (user, database) = pg_names(url);
    let mut tenant = PgConnection::connect(url).await.unwrap();
    grow_past_ten_megabytes(&mut tenant).await;
    // Every later session in this database, the host's included, would start read-only,
    // as the tenant, with a 1 ms timeout.
    for setting in [
        "default_transaction_read_only = on",
        "transaction_read_only = on",
        &format!("role = '{user}'"),
        &format!("session_authorization = '{user}'"),
        "statement_timeout = 1",
        "lock_timeout = 1",
        "idle_session_timeout = 1",
    ] {
        sqlx::raw_sql(&format!("ALTER DATABASE \"{database}\" SET {setting}"))
            .execute(&mut tenant)
            .await
            .unwrap_or_else(|e| panic!("{setting}: {e}"));
    }

    let report = host.meter().await;
    assert_eq!(
        report.suspended, 1,
        "the database grew past its limit and was not suspended: {report:?}"
    );
    let write = sqlx::query("INSERT INTO blobs VALUES (0, 'more')")
        .execute(&mut tenant)
        .await;
    assert!(write.is_err(), "a write while suspended must fail");

    sqlx::query("TRUNCATE blobs")
        .execute(&mut tenant)
        .await
        .unwrap();
    let report = host.meter().await;
    assert_eq!(report.resumed, 1, "{report:?}");
}

#[tokio::test]
async fn postgres_a_held_lock_cannot_stop_a_suspension() {
    let host = TestHost::start(HostOptions::only(quick_postgres())).await;
    let db = host.provision("db", "lock-holder").await;
    let url = db.connection_url.as_str();
    let mut tenant = PgConnection::connect(url).await.unwrap();
    grow_past_ten_megabytes(&mut tenant).await;
    // Moving the table to the holder role needs its exclusive lock: hold a lock forever.
    let mut holder = PgConnection::connect(url).await.unwrap();
    sqlx::raw_sql("BEGIN; LOCK TABLE blobs IN ACCESS SHARE MODE;")
        .execute(&mut holder)
        .await
        .unwrap();

    let report = host.meter().await;
    assert_eq!(
        report.suspended, 1,
        "a held lock escaped the quota: {report:?}"
    );
    // The tenant can log in again, and read.
    let mut again = PgConnection::connect(url).await.unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM blobs")
        .fetch_one(&mut again)
        .await
        .unwrap();
    assert_eq!(rows, 110_000);
}

/// The postgres provider with a 2 s statement (and lock) timeout, so a suspension that
/// waits on a lock gives up quickly.
fn quick_postgres() -> ProviderSpec {
    let mut spec = ProviderSpec::postgres(&["db"]);
    if let Some(sql) = spec.config.sql.as_mut() {
        sql.statement_timeout_ms = 2000;
    }
    spec
}

/// A suspension that keeps failing (here an operator's long transaction, say a dump, holds
/// a lock the move needs) is retried on every pass and named in `/readyz` and
/// `GET /admin/quota` until it succeeds.
#[tokio::test]
async fn postgres_a_suspension_that_keeps_failing_is_reported_until_it_succeeds() {
    let host = TestHost::start(HostOptions::only(quick_postgres())).await;
    let db = host.provision("db", "stuck").await;
    let id = db.id.to_string();
    let url = db.connection_url.as_str();
    let mut tenant = PgConnection::connect(url).await.unwrap();
    grow_past_ten_megabytes(&mut tenant).await;
    let (_, database) = pg_names(url);
    let mut operator = superuser(&database).await;
    sqlx::raw_sql("BEGIN; LOCK TABLE blobs IN ACCESS SHARE MODE;")
        .execute(&mut operator)
        .await
        .unwrap();

    for attempt in 1..=2 {
        let report = host.meter().await;
        assert_eq!(report.suspended, 0, "{report:?}");
        assert_eq!(report.failed, 1, "{report:?}");
        let listed = host
            .get_with("/admin/quota", &[("authorization", ADMIN_BEARER)])
            .await;
        let failing = listed.expect::<QuotaFailures>(200).failing;
        assert_eq!(failing.len(), 1, "{}", listed.body);
        assert_eq!(failing[0].id, db.id);
        assert_eq!(failing[0].attempts, attempt);
        assert!(
            failing[0].error.contains("suspend failed"),
            "{}",
            listed.body
        );
    }
    // Readiness names it (its answer is cached for 10 s: this is the first ask).
    let ready: Readiness = host.get("/readyz").await.json();
    let check = &ready.checks["quota_enforcement"];
    assert_eq!(check.status, "failed", "{ready:?}");
    assert!(check.message.contains(&id), "{check:?}");
    assert_eq!(ready.overall, "degraded");

    sqlx::raw_sql("COMMIT")
        .execute(&mut operator)
        .await
        .unwrap();
    let report = host.meter().await;
    assert_eq!(report.suspended, 1, "{report:?}");
    let listed = host
        .get_with("/admin/quota", &[("authorization", ADMIN_BEARER)])
        .await;
    assert!(
        listed.json::<QuotaFailures>().failing.is_empty(),
        "{}",
        listed.body
    );
}

fn redis_options() -> HostOptions {
    HostOptions {
        // Upkeep (which closes connections past a tier) every 200 ms.
        extra: "[lifecycle]\nmaintain_interval_ms = 200".into(),
        ..HostOptions::only(ProviderSpec::redis())
    }
}

async fn redis_connect(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("tenant connects with its URL")
}

async fn redis_run(
    conn: &mut redis::aio::MultiplexedConnection,
    args: &[&str],
) -> redis::RedisResult<redis::Value> {
    let mut cmd = redis::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    cmd.query_async(conn).await
}

#[tokio::test]
async fn redis_tracking_pushes_never_name_another_tenants_keys() {
    let host = TestHost::start(redis_options()).await;
    let a = host.provision("cache", "watcher").await;
    let b = host.provision("cache", "victim").await;

    // A's client speaks RESP3, so invalidation messages arrive as pushes on the same link.
    let (pushes, mut received) = tokio::sync::mpsc::unbounded_channel();
    let url = format!("{}?protocol=resp3", a.connection_url.as_str());
    let mut watcher = redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection_with_config(
            &redis::AsyncConnectionConfig::new().set_push_sender(pushes),
        )
        .await
        .unwrap();
    let mut refused = Vec::new();
    for args in [
        vec!["CLIENT", "TRACKING", "ON", "BCAST"],
        vec!["CLIENT", "CACHING", "YES"],
        vec!["MEMORY", "STATS"],
        vec!["MEMORY", "DOCTOR"],
        vec!["MEMORY", "MALLOC-STATS"],
        vec!["CLUSTER", "GETKEYSINSLOT", "0", "10"],
    ] {
        if redis_run(&mut watcher, &args).await.is_err() {
            refused.push(args.join(" "));
        }
    }

    let b_key = format!("{}secret-name", b.field("key_prefix"));
    let mut victim = redis_connect(b.connection_url.as_str()).await;
    for value in ["one", "two"] {
        let _: () = redis::cmd("SET")
            .arg(&b_key)
            .arg(value)
            .query_async(&mut victim)
            .await
            .unwrap();
    }
    let _: redis::Value = redis::cmd("PING").query_async(&mut watcher).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut seen = Vec::new();
    while let Ok(push) = received.try_recv() {
        seen.push(format!("{:?}", push.data));
    }
    assert!(
        !seen.iter().any(|p| p.contains("secret-name")),
        "A received B's key names: {seen:?}"
    );
    assert_eq!(
        refused.len(),
        6,
        "allowed to A: only {refused:?} were refused"
    );
}

/// Every keyless command and subcommand of the installed Redis that a tenant may run, checked
/// against the list reviewed in `providers/redis` (each reports only the caller's own
/// connection or nothing of others). A new server version's commands fail this until
/// reviewed.
#[tokio::test]
async fn redis_no_keyless_command_outside_the_reviewed_list_is_allowed() {
    const REVIEWED: &[&str] = &[
        "acl|cat",
        "acl|genpass",
        "acl|help",
        "acl|whoami",
        "asking",
        "auth",
        "client|getname",
        "client|getredir",
        "client|help",
        "client|id",
        "client|info",
        "client|reply",
        "client|setname",
        "client|trackinginfo",
        "command|count",
        "command|docs",
        "command|getkeys",
        "command|getkeysandflags",
        "command|help",
        "command|info",
        "command|list",
        "config|help",
        "discard",
        "echo",
        "exec",
        "hello",
        "latency|help",
        "lolwut",
        "memory|help",
        "module|help",
        "multi",
        "ping",
        "punsubscribe",
        "quit",
        "reset",
        "slowlog|help",
        "time",
        "unsubscribe",
        "unwatch",
        "xgroup|help",
        "xinfo|help",
    ];
    let host = TestHost::start(redis_options()).await;
    let tenant = host.provision("cache", "reviewed").await;
    let user = format!("t_{}", tenant.id.to_string().replace('-', ""));
    let mut admin = redis_admin().await;
    let table: redis::Value = redis::cmd("COMMAND").query_async(&mut admin).await.unwrap();

    let mut keyless = Vec::new();
    collect_keyless(&table, &mut keyless);
    assert!(keyless.len() > 50, "COMMAND listed only {keyless:?}");
    let mut unreviewed = Vec::new();
    for (name, arity) in keyless {
        let parts: Vec<&str> = name.split('|').collect();
        let missing = usize::try_from(arity.unsigned_abs())
            .unwrap()
            .saturating_sub(parts.len());
        let mut dry = redis::cmd("ACL");
        dry.arg("DRYRUN").arg(&user).arg(&parts);
        for _ in 0..missing {
            dry.arg("x");
        }
        let verdict: redis::RedisResult<redis::Value> = dry.query_async(&mut admin).await;
        let allowed = matches!(verdict, Ok(redis::Value::Okay))
            || matches!(&verdict, Ok(redis::Value::SimpleString(s)) if s == "OK");
        if allowed && !REVIEWED.contains(&name.as_str()) {
            unreviewed.push(name);
        }
    }
    assert!(
        unreviewed.is_empty(),
        "tenants may run keyless commands nobody reviewed: {unreviewed:?}"
    );
}

/// (name, arity) of every command and subcommand in a `COMMAND` reply that names no key.
fn collect_keyless(table: &redis::Value, out: &mut Vec<(String, i64)>) {
    let redis::Value::Array(commands) = table else {
        return;
    };
    for command in commands {
        let redis::Value::Array(fields) = command else {
            continue;
        };
        let text = |v: &redis::Value| match v {
            redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
            redis::Value::SimpleString(s) => s.clone(),
            _ => String::new(),
        };
        let int = |v: &redis::Value| match v {
            redis::Value::Int(n) => *n,
            _ => 0,
        };
        let empty =
            |v: Option<&redis::Value>| matches!(v, Some(redis::Value::Array(a)) if a.is_empty());
        // [name, arity, flags, first key, last key, step, categories, tips, key specs, subcommands]
        if let Some(subcommands @ redis::Value::Array(list)) = fields.get(9)
            && !list.is_empty()
        {
            collect_keyless(subcommands, out);
            continue;
        }
        if int(&fields[3]) == 0 && empty(fields.get(8)) {
            out.push((text(&fields[0]), int(&fields[1])));
        }
    }
}

#[tokio::test]
async fn redis_one_command_cannot_allocate_half_a_gigabyte() {
    let host = TestHost::start(redis_options()).await;
    let tenant = host.provision("cache", "greedy").await;
    let key = format!("{}huge", tenant.field("key_prefix"));
    let mut conn = redis_connect(tenant.connection_url.as_str()).await;
    for args in [
        vec!["SETRANGE", key.as_str(), "536870911", "x"],
        vec!["SETBIT", key.as_str(), "4294967295", "1"],
        vec!["BITFIELD", key.as_str(), "SET", "u8", "#536870911", "1"],
    ] {
        let answer = redis_run(&mut conn, &args).await;
        assert!(
            answer.is_err(),
            "{args:?} allocated hundreds of MB for one tenant: {answer:?}"
        );
    }
    let used = redis_used_memory().await;
    assert!(used < 256 * 1024 * 1024, "the server holds {used} bytes");
    // The provider reports a server that one tenant could exhaust; this one is not.
    let ready: Readiness = host.get("/readyz").await.json();
    let message = ready
        .checks
        .get("provider:redis")
        .map(|check| check.message.clone())
        .unwrap_or_default();
    assert!(
        !message.contains("exhaust"),
        "the test server is unsafe: {message}"
    );
}

async fn redis_used_memory() -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(&mut redis_admin().await)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap()
}

#[tokio::test]
async fn redis_connections_past_the_tier_are_closed() {
    let host = TestHost::start(redis_options()).await;
    let tenant = host.provision("cache", "hoarder").await;
    let limit = tenant.limits.values["connections"] as usize;
    let url = tenant.connection_url.as_str();
    let mut connections = Vec::new();
    for _ in 0..limit + 3 {
        connections.push(redis_connect(url).await);
        // Distinct ages, so "the newest" is well defined.
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut alive = Vec::new();
    for (i, conn) in connections.iter_mut().enumerate() {
        let ping = tokio::time::timeout(
            Duration::from_secs(2),
            redis::cmd("PING").query_async::<String>(conn),
        )
        .await;
        if matches!(ping, Ok(Ok(_))) {
            alive.push(i);
        }
    }
    assert_eq!(
        alive,
        (0..limit).collect::<Vec<_>>(),
        "the oldest {limit} connections stay, the rest are closed"
    );
}

#[tokio::test]
async fn redis_rotation_ends_the_old_password_and_its_sessions() {
    let host = TestHost::start(redis_options()).await;
    let bearer = host.new_account("attacker").await.bearer;
    let cache = host
        .provision_with("cache", "rotated", &[("authorization", &*bearer)])
        .await;
    let old_url = cache.connection_url.as_str();
    let mut old = redis_connect(old_url).await;
    let rotated = rotate(&host, &cache, &bearer).await;
    assert!(
        redis::cmd("PING")
            .query_async::<String>(&mut old)
            .await
            .is_err(),
        "a session opened with the old password outlived the rotation"
    );
    assert!(
        redis::Client::open(old_url)
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .is_err(),
        "the old password still logs in"
    );
    let mut new = redis_connect(rotated.connection_url.as_str()).await;
    let pong: String = redis::cmd("PING").query_async(&mut new).await.unwrap();
    assert_eq!(pong, "PONG");
}

/// Rotation runs the provider's create-or-adopt again: it must not hand a suspended
/// tenant its write rights back.
#[tokio::test]
async fn rotation_does_not_lift_a_suspension() {
    let host = TestHost::start(HostOptions {
        providers: vec![ProviderSpec::postgres(&["db"]), ProviderSpec::redis()],
        ..HostOptions::default()
    })
    .await;
    let bearer = host.new_account("attacker").await.bearer;

    let db = host
        .provision_with("db", "suspended-db", &[("authorization", &*bearer)])
        .await;
    let mut tenant = PgConnection::connect(db.connection_url.as_str())
        .await
        .unwrap();
    grow_past_ten_megabytes(&mut tenant).await;
    let cache = host
        .provision_with("cache", "suspended-cache", &[("authorization", &*bearer)])
        .await;
    let prefix = cache.field("key_prefix").to_string();
    let mut conn = redis_connect(cache.connection_url.as_str()).await;
    let three_megabytes = "x".repeat(3 << 20);
    for n in 0..2 {
        let _: () = redis::cmd("SET")
            .arg(format!("{prefix}big{n}"))
            .arg(&three_megabytes)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    let report = host.meter().await;
    assert_eq!(report.suspended, 2, "{report:?}");

    let rotated = rotate(&host, &db, &bearer).await;
    let mut tenant = PgConnection::connect(rotated.connection_url.as_str())
        .await
        .unwrap();
    let write = sqlx::query("INSERT INTO blobs VALUES (0, 'more')")
        .execute(&mut tenant)
        .await;
    assert!(write.is_err(), "the rotated db writes while suspended");
    let create = sqlx::query("CREATE TABLE more (id int)")
        .execute(&mut tenant)
        .await;
    assert!(
        create.is_err(),
        "the rotated db creates tables while suspended"
    );

    let rotated = rotate(&host, &cache, &bearer).await;
    let mut conn = redis_connect(rotated.connection_url.as_str()).await;
    let write = redis_run(&mut conn, &["SET", &format!("{prefix}more"), "x"]).await;
    assert!(write.is_err(), "the rotated cache writes while suspended");
}

/// Logs in with a resource's creds file, from its creation (`credentials.creds_file`).
async fn nats_login(resource: &Created) -> Result<async_nats::Client, String> {
    instanode_tests::nats::login(
        &resource.connection_url,
        resource.field("credentials.creds_file"),
    )
    .await
}

/// Logs in with the creds file a rotation handed out (`fields["credentials.creds_file"]`).
async fn nats_login_rotated(rotated: &ResourceCredentials) -> Result<async_nats::Client, String> {
    instanode_tests::nats::login(
        &rotated.connection_url,
        &rotated.fields["credentials.creds_file"],
    )
    .await
}

#[tokio::test]
async fn nats_rotation_revokes_the_old_user_and_closes_its_connections() {
    let host = TestHost::start(HostOptions::only(ProviderSpec::nats())).await;
    let bearer = host.new_account("attacker").await.bearer;
    let queue = host
        .provision_with("queue", "rotated", &[("authorization", &*bearer)])
        .await;
    let old = nats_login(&queue).await.expect("the first user logs in");
    let rotated = rotate(&host, &queue, &bearer).await;

    // The server closes the revoked user's connection.
    let mut closed = false;
    for _ in 0..50 {
        if old.connection_state() != async_nats::connection::State::Connected {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(closed, "a connection of the old user outlived the rotation");
    assert!(
        nats_login(&queue).await.is_err(),
        "the old credentials still log in"
    );
    let new = nats_login_rotated(&rotated)
        .await
        .expect("the new credentials log in");
    new.publish("tenant.check", "after rotation".into())
        .await
        .unwrap();
    new.flush().await.unwrap();

    // Later account updates keep the old user revoked: marked suspended while well under
    // its limit, the resource is resumed by the meter, which pushes the account again.
    let mut meta = host.metadata().await;
    sqlx::query("UPDATE resources SET status = 'suspended' WHERE token = $1")
        .bind(queue.token)
        .execute(&mut meta)
        .await
        .unwrap();
    let report = host.meter().await;
    assert_eq!(report.resumed, 1, "{report:?}");
    assert!(
        nats_login(&queue).await.is_err(),
        "the old credentials log in again after an account update"
    );
}

//! After creation: the owner's view and delete, the 24-hour reaper, quota suspension and
//! resumption on the real server, and readiness through a backend outage.

use std::time::Duration;

use futures::FutureExt;

use instanode::api::schema::{Created, Readiness, Resource, ResourceDeleted};
use instanode::store::ResourceStatus;
use instanode_tests::{HostOptions, ProviderSpec, TestHost, assert_error, backend_objects};
use serde_json::json;
use sqlx::{Connection, PgConnection};

#[tokio::test]
async fn the_owner_sees_and_deletes_a_resource_by_token() {
    let host = TestHost::start(HostOptions::default()).await;
    let db = host.provision("db", "owned").await;
    let token = db.token.to_string();
    let path = format!("/api/v1/resources/{token}");

    let view = host.get(&path).await;
    let resource: Resource = view.expect(200);
    assert_eq!(resource.status, ResourceStatus::Active);
    assert_eq!(resource.kind, "db");
    assert_eq!(resource.tier, "anonymous");
    assert_eq!(resource.limits["storage_mb"], 10);
    assert!(resource.expires_at.is_some());
    // The whole answer's text, whatever fields it has.
    assert!(
        !view.body.to_string().contains("postgres://"),
        "the connection URL is never shown here"
    );

    let deleted = host.delete(&path).await;
    deleted.expect::<ResourceDeleted>(200);
    assert_eq!(backend_objects(&db.id.to_string()).await, (false, false));
    assert!(PgConnection::connect(&db.connection_url).await.is_err());
    assert_error(&host.get(&path).await, 410, "resource_deleted");
    assert_error(&host.delete(&path).await, 410, "resource_deleted");

    let unknown = format!("/api/v1/resources/{}", uuid::Uuid::new_v4());
    assert_error(&host.get(&unknown).await, 404, "resource_not_found");
    assert_error(&host.delete(&unknown).await, 404, "resource_not_found");
    assert_error(
        &host.get("/api/v1/resources/not-a-token").await,
        400,
        "invalid_token",
    );
}

#[tokio::test]
async fn after_24_hours_the_reaper_removes_the_resource() {
    let host = TestHost::start(HostOptions::default()).await;
    let db = host.provision("db", "short-lived").await;
    let token = db.token.to_string();
    let id = db.id.to_string();

    host.advance_clock(23 * 3600).await;
    assert_eq!(host.reap().await.ended, 0, "not yet due");
    assert_eq!(backend_objects(&id).await, (true, true));

    host.advance_clock(3600 + 60).await;
    let report = host.reap().await;
    assert_eq!(report.ended, 1, "{report:?}");
    assert_eq!(backend_objects(&id).await, (false, false));
    let gone = host.get(&format!("/api/v1/resources/{token}")).await;
    assert_error(&gone, 410, "resource_expired");
    assert_eq!(host.reap().await.ended, 0, "nothing left to do");
}

#[tokio::test]
async fn expiry_survives_a_host_restart() {
    let first = TestHost::start(HostOptions::default()).await;
    let db = first.provision("db", "outlives-its-host").await;
    let metadata_db = first.metadata_db.clone();
    drop(first);

    let second = TestHost::start(HostOptions {
        metadata_db: Some(metadata_db),
        ..HostOptions::default()
    })
    .await;
    second.advance_clock(24 * 3600 + 60).await;
    assert_eq!(second.reap().await.ended, 1);
    assert_eq!(backend_objects(&db.id.to_string()).await, (false, false));
}

#[tokio::test]
async fn a_provision_abandoned_by_a_dead_host_is_cleaned_up() {
    let host = TestHost::start(HostOptions::default()).await;
    let mut meta = host.metadata().await;
    // What a host killed mid-saga leaves: a pending row (and maybe backend objects).
    let id = uuid::Uuid::new_v4();
    sqlx::query(
        "INSERT INTO resources (id, token, kind, name, env, tier, status, provider,
                                provider_version, limits, request_id, created_at, updated_at)
         VALUES ($1, $2, 'db', 'orphan', 'development', 'anonymous', 'pending', 'postgres',
                 '0', '{}', 'dead-host', now(), now())",
    )
    .bind(id)
    .bind(uuid::Uuid::new_v4())
    .execute(&mut meta)
    .await
    .unwrap();
    assert_eq!(
        host.reap().await.ended,
        0,
        "a fresh pending row may still finish"
    );
    host.advance_clock(11 * 60).await;
    assert_eq!(host.reap().await.ended, 1);
    let status: String = sqlx::query_scalar("SELECT status::text FROM resources WHERE id = $1")
        .bind(id)
        .fetch_one(&mut meta)
        .await
        .unwrap();
    assert_eq!(status, "failed");
}

#[tokio::test]
async fn a_database_over_its_size_limit_is_suspended_until_data_is_deleted() {
    let host = TestHost::start(HostOptions::default()).await;
    let db = host.provision("db", "grows").await;
    let token = db.token.to_string();
    let mut tenant = PgConnection::connect(&db.connection_url).await.unwrap();
    // ~15 MB of rows that do not compress, past the anonymous 10 MB.
    sqlx::raw_sql(
        "CREATE TABLE blobs (id int, body text);
         INSERT INTO blobs SELECT g, md5(g::text) || md5((g * 7)::text) || md5((g * 13)::text)
           FROM generate_series(1, 110000) g;",
    )
    .execute(&mut tenant)
    .await
    .unwrap();

    let report = host.meter().await;
    assert_eq!(report.suspended, 1, "{report:?}");
    let view = host.get(&format!("/api/v1/resources/{token}")).await;
    let resource: Resource = view.json();
    assert_eq!(resource.status, ResourceStatus::Suspended, "{}", view.body);
    assert!(resource.storage_exceeded);
    assert!(resource.storage_bytes.unwrap() > 10 * 1024 * 1024);

    // Writes fail through the tenant's own URL; reads still work.
    let write = sqlx::query("INSERT INTO blobs VALUES (0, 'more')")
        .execute(&mut tenant)
        .await;
    assert!(write.is_err(), "a write while suspended must fail");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM blobs")
        .fetch_one(&mut tenant)
        .await
        .unwrap();
    assert_eq!(rows, 110_000);

    // Deleting the data brings it back under the limit, and the meter resumes it.
    sqlx::query("TRUNCATE blobs")
        .execute(&mut tenant)
        .await
        .unwrap();
    let report = host.meter().await;
    assert_eq!(report.resumed, 1, "{report:?}");
    let view = host.get(&format!("/api/v1/resources/{token}")).await;
    assert_eq!(
        view.json::<Resource>().status,
        ResourceStatus::Active,
        "{}",
        view.body
    );
    sqlx::query("INSERT INTO blobs VALUES (0, 'more')")
        .execute(&mut tenant)
        .await
        .expect("writes work again");
}

fn outage_ctl(action: &str) {
    let ctl = std::env::var("INSTANODE_TEST_OUTAGE_CTL").expect("run through ./scripts/test");
    let status = std::process::Command::new(ctl)
        .arg(action)
        .status()
        .unwrap();
    assert!(status.success(), "outage cluster {action}");
}

#[tokio::test]
async fn a_backend_outage_degrades_readiness_and_recovers_without_a_restart() {
    let url = std::env::var("INSTANODE_TEST_OUTAGE_PG_URL").expect("run through ./scripts/test");
    let port = std::env::var("INSTANODE_TEST_OUTAGE_PG_PORT").unwrap();
    let host = TestHost::start(HostOptions {
        providers: vec![ProviderSpec::postgres_on(&["db"], &url, &port)],
        ..HostOptions::default()
    })
    .await;
    // `latency_ms` a number and `last_checked` a string: what `Check` reads.
    let ready: Readiness = host.get("/readyz").await.expect(200);
    assert_eq!(ready.overall, "ok", "{ready:?}");
    assert_eq!(ready.checks["provider:postgres"].status, "ok");

    outage_ctl("stop");
    let down = async {
        // Readiness is cached for 10 s: wait for a fresh round.
        let mut ready = host.get("/readyz").await;
        for _ in 0..30 {
            if ready.json::<Readiness>().overall == "degraded" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            ready = host.get("/readyz").await;
        }
        let ready: Readiness = ready.expect(200);
        assert_eq!(ready.overall, "degraded", "{ready:?}");
        assert_eq!(ready.checks["metadata_db"].status, "ok");
        assert_eq!(ready.checks["provider:postgres"].status, "failed");
        assert_eq!(host.get("/healthz").await.status.as_u16(), 200);
        let refused = host
            .post_json("/db/new", json!({"name": "during-outage"}))
            .await;
        assert_eq!(refused.status.as_u16(), 503, "{}", refused.body);
        assert!(refused.error().agent_action.is_some(), "{}", refused.body);
    };
    // Restart the cluster whatever happened, so later runs find it up.
    let outcome = std::panic::AssertUnwindSafe(down).catch_unwind().await;
    outage_ctl("start");
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }

    let mut created = host
        .post_json("/db/new", json!({"name": "after-outage"}))
        .await;
    for _ in 0..20 {
        if created.status.as_u16() == 201 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        created = host
            .post_json("/db/new", json!({"name": "after-outage"}))
            .await;
    }
    let created: Created = created.expect(201);
    let mut tenant = PgConnection::connect(&created.connection_url)
        .await
        .expect("the new database works");
    sqlx::query("SELECT 1").execute(&mut tenant).await.unwrap();
}

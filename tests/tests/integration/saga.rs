//! A failure forced after each step of the provision saga leaves no role, no database and no
//! active row behind, checked on the real server.

use instanode::api::schema::Created;
use instanode_tests::{HostOptions, TestHost, assert_error, backend_objects};
use serde_json::json;

#[tokio::test]
async fn a_failure_after_any_step_unwinds_every_earlier_step() {
    let host = TestHost::start(HostOptions {
        fault_injection: true,
        ..HostOptions::default()
    })
    .await;
    let mut meta = host.metadata().await;
    for kind in ["db", "vector"] {
        for step in [
            "after_insert",
            "after_provision",
            "after_seal",
            "after_activate",
        ] {
            let request_id = format!("fault-{kind}-{step}");
            let reply = host
                .post(
                    &format!("/{kind}/new"),
                    Some("application/json"),
                    json!({"name": "doomed"}).to_string().into_bytes(),
                    &[("x-request-id", &request_id), ("x-instanode-fault", step)],
                )
                .await;
            let refusal = assert_error(&reply, 503, "fault_injected");
            assert!(!refusal.extra.contains_key("connection_url"));

            let (id, status, sealed): (String, String, Option<Vec<u8>>) = sqlx::query_as(
                "SELECT id::text, status::text, sealed_credentials FROM resources WHERE request_id = $1",
            )
            .bind(&request_id)
            .fetch_one(&mut meta)
            .await
            .expect("the saga wrote its pending row");
            assert_eq!(status, "failed", "{kind} {step}");
            assert!(sealed.is_none(), "{kind} {step}: credentials dropped");
            let (role, database) = backend_objects(&id).await;
            assert!(!role, "{kind} {step}: role left behind");
            assert!(!database, "{kind} {step}: database left behind");
        }
    }
    let active: i64 = sqlx::query_scalar("SELECT count(*) FROM resources WHERE status = 'active'")
        .fetch_one(&mut meta)
        .await
        .unwrap();
    assert_eq!(active, 0);

    // Without the header the same host provisions normally.
    let ok = host.post_json("/db/new", json!({"name": "fine"})).await;
    ok.expect::<Created>(201);
}

#[tokio::test]
async fn the_fault_header_is_ignored_unless_testing_enables_it() {
    let host = TestHost::start(HostOptions::default()).await;
    let reply = host
        .post(
            "/db/new",
            Some("application/json"),
            json!({"name": "normal"}).to_string().into_bytes(),
            &[("x-instanode-fault", "after_provision")],
        )
        .await;
    reply.expect::<Created>(201);
}

#[tokio::test]
async fn clients_that_hang_up_leave_no_half_made_resource() {
    let host = TestHost::start(HostOptions::default()).await;
    let mut meta = host.metadata().await;
    // Clients that give up after a few milliseconds, mid-saga. How far a request gets in
    // that time depends on the machine, so the patience grows until some reach the saga.
    for patience_ms in [15, 40, 100, 250] {
        let impatient = reqwest::Client::builder()
            .timeout(std::time::Duration::from_millis(patience_ms))
            .build()
            .unwrap();
        let calls = (0..16).map(|i| {
            impatient
                .post(format!("{}/db/new", host.url))
                .header("content-type", "application/json")
                .header("x-forwarded-for", host.fresh_client())
                .body(json!({"name": format!("hangup-{patience_ms}-{i}")}).to_string())
                .send()
        });
        // Most calls are cut off by the client; whichever finish must have succeeded.
        for reply in futures::future::join_all(calls).await.into_iter().flatten() {
            assert_eq!(reply.status().as_u16(), 201);
        }
        let reached: i64 = sqlx::query_scalar("SELECT count(*) FROM resources")
            .fetch_one(&mut meta)
            .await
            .unwrap();
        if reached > 0 {
            break;
        }
    }
    // Every saga runs to its end on its own: nothing stays pending, and the backend matches
    // the metadata row by row.
    let mut rows: Vec<(String, String)> = Vec::new();
    for _ in 0..100 {
        rows = sqlx::query_as("SELECT id::text, status::text FROM resources")
            .fetch_all(&mut meta)
            .await
            .unwrap();
        if !rows.is_empty() && rows.iter().all(|(_, status)| status != "pending") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(!rows.is_empty(), "requests reached the saga");
    for (id, status) in rows {
        let (role, database) = backend_objects(&id).await;
        match status.as_str() {
            "active" => assert!(role && database, "{id} active without its backend objects"),
            other => panic!("{id} ended {other}"),
        }
    }
}
